"""Image conversions and grids with PIL + numpy (no torchvision)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N,3,H,W] or [3,H,W] floats in [-1,1] -> uint8 [N,H,W,3] (or [H,W,3])."""
    x = images.detach().float().cpu().clamp(-1, 1)
    x = ((x + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).numpy()


def from_uint8(images: np.ndarray) -> torch.Tensor:
    """uint8 [N,H,W,3] -> float32 [N,3,H,W] in [-1,1] (the inverse of to_uint8)."""
    x = torch.from_numpy(np.ascontiguousarray(np.asarray(images).transpose(0, 3, 1, 2)))
    return x.float().div_(127.5).sub_(1.0)  # in place: one float copy (the data loader's hot path)


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """[N,3,H,W] floats in [-1,1] -> list of RGB PIL images."""
    arr = to_uint8(images if images.dim() == 4 else images[None])
    return [Image.fromarray(a) for a in arr]


def from_pil(image: Image.Image, size: int | None = None) -> torch.Tensor:
    """RGB PIL image -> float32 [3,H,W] in [-1,1], optionally resized (Lanczos) to size×size."""
    image = image.convert("RGB")
    if size is not None and image.size != (size, size):
        image = image.resize((size, size), Image.LANCZOS)
    arr = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def grid(images: torch.Tensor | Sequence[Image.Image], nrow: int = 8, pad: int = 2,
         fill: int = 255) -> Image.Image:
    """Tile images (tensor [N,3,H,W] in [-1,1], or PIL list) into one PIL grid, nrow per row."""
    pils = to_pil(images) if isinstance(images, torch.Tensor) else [im.convert("RGB") for im in images]
    if not pils:
        raise ValueError("grid() needs at least one image")
    w, h = pils[0].size
    ncol = min(nrow, len(pils))
    nrows = (len(pils) + ncol - 1) // ncol
    canvas = Image.new("RGB", (ncol * (w + pad) + pad, nrows * (h + pad) + pad), (fill,) * 3)
    for i, im in enumerate(pils):
        r, c = divmod(i, ncol)
        canvas.paste(im, (pad + c * (w + pad), pad + r * (h + pad)))
    return canvas


def save_grid(images: torch.Tensor | Sequence[Image.Image], path: str | Path, nrow: int = 8) -> Path:
    """Save a grid PNG and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid(images, nrow=nrow).save(path)
    return path
