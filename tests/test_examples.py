"""The shipped example photos (training/make_examples.py) go through the real upload path."""

from pathlib import Path

import numpy as np
import pytest

from facelab.uploads import prepare_upload

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "assets" / "examples").glob("*"))


def test_examples_are_shipped_in_several_formats() -> None:
    assert {p.suffix for p in EXAMPLES} >= {".jpg", ".png", ".webp"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_face_is_found_and_centred(path: Path) -> None:
    img, how = prepare_upload(str(path), 64)
    assert img.size == (64, 64) and img.mode == "RGB"
    assert how.startswith("Face found"), how
    # the crop is centred on the face: the middle of the crop differs from the (blurred) scene at its corners
    arr = np.asarray(img, np.float32)
    centre, corners = arr[24:40, 24:40].mean((0, 1)), arr[[0, 0, -1, -1], [0, -1, 0, -1]].mean(0)
    assert np.abs(centre - corners).max() > 20
