"""Background variants of face images (seed 002): original | grey | blur, from a foreground mask."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

VARIANTS = ("original", "grey", "blur")
GREY = 127  # flat mid-grey, the seed-002 "removed background" colour


def check_variant(variant: str) -> str:
    """Return variant if it is one of VARIANTS, else raise a ValueError naming the choices."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown background variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return variant


def composite(image: np.ndarray, mask: np.ndarray, variant: str,
              blur_radius: float | None = None) -> np.ndarray:
    """Put the foreground (mask=1) of a uint8 [H,W,3] image over the variant's background.

    mask is float [H,W] in [0,1] (soft edges kept). "blur" uses a Gaussian of radius
    blur_radius (default: 1/16 of the image side, strong enough to erase background detail).
    """
    check_variant(variant)
    if variant == "original":
        return image
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H,W,3], got shape {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image {image.shape[:2]}")
    m = np.clip(mask.astype(np.float32), 0.0, 1.0)[..., None]
    if variant == "grey":
        back = np.full_like(image, GREY, dtype=np.float32)
    else:
        radius = blur_radius if blur_radius is not None else max(2.0, image.shape[0] / 16)
        back = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32)
    out = m * image.astype(np.float32) + (1.0 - m) * back
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
