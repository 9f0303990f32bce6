#!/usr/bin/env python
"""Write the app's example photos (assets/examples): synthetic faces framed like snapshots, not crops.

    python training/make_examples.py [--out assets/examples]

No real person's photo is shipped. Each example is a synthfaces face rendered large, then placed
off-centre and smaller on a wider canvas with its own background scene, so the upload path has real
work to do: find the face, crop and centre it, remove the background. Formats differ on purpose
(JPEG, RGBA PNG, WebP) to exercise upload normalisation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from facelab.data.synthfaces import render, sample_factors  # noqa: E402

# (file name, factor overrides, canvas (w, h), face (left, size), format options)
EXAMPLES = [
    ("smiling_woman.jpg", {"sex": 0, "smile": 4, "eyeglasses": 0}, (360, 280), (150, 200), {"quality": 90}),
    ("bearded_man.png", {"sex": 1, "beard": 2, "smile": 0, "eyeglasses": 0}, (300, 360), (30, 220), {}),
    ("grey_haired_woman.webp", {"sex": 0, "age": 2, "eyeglasses": 0, "smile": 2}, (320, 320), (70, 210),
     {"quality": 90}),
]


def example(fixed: dict[str, int], canvas: tuple[int, int], box: tuple[int, int], seed: int) -> Image.Image:
    """One snapshot: a face (with its soft mask) standing off-centre in another render's blurred scene."""
    rng = np.random.default_rng(seed)
    images, masks = render(sample_factors(rng, 2, fixed=fixed), 256, np.array([seed, seed + 1], np.uint64))
    # the scene: the second render's background, its person filled with the background's mean colour
    bg = images[1].astype(np.float32)
    keep = masks[1] < 0.5
    bg[~keep] = bg[keep].mean(axis=0)
    scene = Image.fromarray(bg.astype(np.uint8)).resize(canvas, Image.BICUBIC).filter(ImageFilter.GaussianBlur(8))
    left, size = box
    face = Image.fromarray(images[0]).resize((size, size), Image.LANCZOS)
    alpha = Image.fromarray((masks[0] * 255).astype(np.uint8)).resize((size, size), Image.LANCZOS)
    scene.paste(face, (left, canvas[1] - size), alpha)  # shoulders meet the bottom edge, as in a snapshot
    return scene


def main(argv: list[str] | None = None) -> None:
    """Write every example into --out."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / "assets" / "examples"))
    out = Path(p.parse_args(argv).out)
    out.mkdir(parents=True, exist_ok=True)
    for k, (name, fixed, canvas, box, opts) in enumerate(EXAMPLES):
        img = example(fixed, canvas, box, seed=100 + 7 * k)
        if name.endswith(".png"):
            img = img.convert("RGBA")  # an alpha channel the upload path must flatten
        img.save(out / name, **opts)
        print(out / name, img.size, img.mode)


if __name__ == "__main__":
    main()
