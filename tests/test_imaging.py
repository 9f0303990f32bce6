"""facelab.imaging conversions: uint8 arrays and [-1, 1] tensors round-trip exactly."""

from __future__ import annotations

import threading

import numpy as np
import torch
from PIL import Image

from facelab.imaging import from_uint8, save_png_shared, to_uint8


def test_from_uint8_inverts_to_uint8():
    arr = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    x = from_uint8(arr)
    assert x.shape == (2, 3, 5, 7) and x.dtype == torch.float32
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert torch.equal(x[1, 2], torch.from_numpy(arr[1, :, :, 2]).float() / 127.5 - 1.0)  # channels moved, not mixed
    assert np.array_equal(to_uint8(x), arr)


def _noise_image(seed: int, size: int = 96) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def test_shared_png_is_content_addressed_whole_and_never_rewritten(tmp_path):
    img = _noise_image(0)
    path = save_png_shared(img, tmp_path)
    assert np.array_equal(np.asarray(Image.open(path)), np.asarray(img))
    inode = path.stat().st_ino
    assert save_png_shared(img.copy(), tmp_path) == path and path.stat().st_ino == inode  # reused, not rewritten
    assert save_png_shared(_noise_image(1), tmp_path) != path
    assert not list(tmp_path.rglob(".image.png.*"))  # no temp files left behind


def test_shared_png_readers_never_see_a_partial_file_while_others_save_it(tmp_path):
    """The app's concurrent identical answers: many writers of the same image, readers decoding it."""
    img, errors = _noise_image(2, 256), []
    path = save_png_shared(img, tmp_path)

    def write():
        for _ in range(100):
            save_png_shared(img, tmp_path)

    def read():
        for _ in range(300):
            try:
                with Image.open(path) as im:
                    im.load()
            except Exception as err:  # truncated or empty file
                errors.append(err)

    threads = [threading.Thread(target=f) for f in (write, write, read, read, read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
