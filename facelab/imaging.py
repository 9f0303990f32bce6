"""Image conversions and grids with PIL + numpy (no torchvision)."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
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


def save_png_shared(image: Image.Image, folder: str | Path) -> Path:
    """Write image as folder/<sha256 of its PNG>/image.png, atomically; an existing copy is reused as is.

    Servers hand the same output to many concurrent readers: rewriting a file in place (as Gradio
    does for PIL outputs) lets one request truncate a file another is still sending. Here a file is
    only ever created whole (temp file, then rename) and never rewritten.
    """
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    data = buf.getvalue()
    target = Path(folder) / hashlib.sha256(data).hexdigest() / "image.png"
    if target.is_file():
        os.utime(target)  # age-based cache cleaners count from the latest use
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".image.png.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
