"""Figures the lab hands back as images: labelled grids (seed 001's traversal layout), strips, GIFs."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

# small models' faces are upscaled (nearest: the model's own pixels, unsmoothed) to at least this many
# pixels per cell: at 64 the app showed morph frames and edits too small to see and cut their labels
MIN_CELL = 128
PAD = 2
LABEL_W = 168  # fits "vae32_original (grey)" and "Bags_Under_Eyes"
HEADER_H = 18


def cell_size(image_size: int) -> int:
    """Side of one grid cell: the image side times the smallest integer that reaches MIN_CELL."""
    return int(image_size) * max(1, math.ceil(MIN_CELL / int(image_size)))


def upscale(image: Image.Image, side: int) -> Image.Image:
    """Nearest-neighbour resize to side×side (keeps the model's pixels visible, no smoothing)."""
    return image if image.size == (side, side) else image.resize((side, side), Image.NEAREST)


@dataclass
class GridLayout:
    """Where cell (r, c) sits in a labelled grid, so callers and tests can cut cells back out."""

    rows: int
    cols: int
    cell: int
    left: int
    top: int

    def box(self, r: int, c: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of cell (r, c)."""
        x = self.left + PAD + c * (self.cell + PAD)
        y = self.top + PAD + r * (self.cell + PAD)
        return x, y, x + self.cell, y + self.cell

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the whole grid image."""
        return (self.left + PAD + self.cols * (self.cell + PAD), self.top + PAD + self.rows * (self.cell + PAD))

    def as_dict(self) -> dict[str, int]:
        """JSON-ready layout for the app's info panel."""
        return {"rows": self.rows, "columns": self.cols, "cell": self.cell, "left": self.left, "top": self.top}

    @classmethod
    def from_dict(cls, data: dict) -> GridLayout:
        """Inverse of as_dict (extra keys ignored): cut cells out of a grid an endpoint returned."""
        return cls(int(data["rows"]), int(data["columns"]), int(data["cell"]), int(data["left"]), int(data["top"]))


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1 has only the bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font: ImageFont.ImageFont) -> str:
    """text shortened with '…' until it fits width pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def labelled_grid(cells: Sequence[Sequence[Image.Image]], row_labels: Sequence[str] | None = None,
                  col_labels: Sequence[str] | None = None) -> tuple[Image.Image, GridLayout]:
    """Rows of equally sized images on a white canvas, with optional row and column labels."""
    if not cells or not cells[0]:
        raise ValueError("labelled_grid needs at least one cell")
    cell = cell_size(cells[0][0].width)
    layout = GridLayout(len(cells), max(len(r) for r in cells), cell,
                        LABEL_W if row_labels else 0, HEADER_H if col_labels else 0)
    canvas = Image.new("RGB", layout.size, (255, 255, 255))
    draw, font = ImageDraw.Draw(canvas), _font()
    for r, row in enumerate(cells):
        for c, im in enumerate(row):
            canvas.paste(upscale(im.convert("RGB"), cell), layout.box(r, c)[:2])
        if row_labels:
            y = layout.box(r, 0)[1] + cell // 2 - 6
            draw.text((4, y), _fit(draw, row_labels[r], LABEL_W - 8, font), fill=(0, 0, 0), font=font)
    for c, text in enumerate(col_labels or []):
        x0, _, x1, _ = layout.box(0, c)
        text = _fit(draw, text, cell, font)
        x = x0 + (cell - draw.textlength(text, font=font)) / 2
        draw.text((x, 3), text, fill=(0, 0, 0), font=font)
    return canvas, layout


def gif_bytes(frames: Sequence[Image.Image], fps: float = 8.0, side: int | None = None) -> bytes:
    """An endlessly looping animated GIF of frames (optionally upscaled to side×side)."""
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    pics = [upscale(f.convert("RGB"), side) if side else f.convert("RGB") for f in frames]
    buf = io.BytesIO()
    pics[0].save(buf, format="GIF", save_all=True, append_images=pics[1:], loop=0,
                 duration=max(20, int(round(1000 / max(fps, 0.1)))), disposal=1)
    return buf.getvalue()
