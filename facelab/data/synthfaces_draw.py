"""Batched anti-aliased 2-D drawing for synthfaces: signed distances, ramps, layer compositing.

Every array is float32 [N,h,w] (a window of the image); per-image parameters are [N,1,1]
so one numpy op draws the same shape with different geometry in every image of the batch.
Shapes are signed distances in image units (the image spans [-1,1]); a 1-pixel linear ramp
turns a distance into coverage, which is box-filter anti-aliasing at any size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

F32 = np.float32
Num = float | np.ndarray  # a constant, or per-image values shaped [N,1,1]


def col(x: np.ndarray | float) -> np.ndarray:
    """Per-image scalar(s) [N] -> [N,1,1] float32 for broadcasting over a window."""
    return np.asarray(x, dtype=F32).reshape(-1, 1, 1)


def ellipse_d(u: np.ndarray, v: np.ndarray, cu: Num, cv: Num, au: Num, av: Num) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipse (centre cu,cv; half-axes au,av)."""
    du = (u - cu) * (1.0 / au)
    du *= du
    dv = (v - cv) * (1.0 / av)
    dv *= dv
    q = du + dv  # not in place: u and v may be broadcast rows/columns
    q -= 1.0
    # First-order distance: (q-1)/|grad q|, with |grad q| taken at the mean radius.
    q *= 0.5 * np.sqrt(au * av)
    return q


def ring_d(u: np.ndarray, v: np.ndarray, cu: Num, cv: Num, au: Num, av: Num, half: Num) -> np.ndarray:
    """Signed distance to an elliptical ring of half-thickness half (needs one sqrt, so keep it small)."""
    du = (u - cu) * (1.0 / au)
    du *= du
    dv = (v - cv) * (1.0 / av)
    dv *= dv
    q = du + dv
    np.sqrt(q, out=q)
    q -= 1.0
    np.abs(q, out=q)
    q *= np.sqrt(au * av)
    q -= half
    return q


def curve_d(u: np.ndarray, v: np.ndarray, cu: Num, cv: Num, half_w: Num, bend: Num, half_t: Num) -> np.ndarray:
    """Signed distance to a parabolic stroke v = cv + bend*(t^2) with t=(u-cu)/half_w, |t|<=1.

    The stroke tapers to 40% thickness at its ends so lines look drawn, not cut.
    """
    t = (u - cu) * (1.0 / half_w)
    t2 = t * t
    d = v - cv - bend * t2
    np.abs(d, out=d)
    d -= half_t * (1.0 - 0.6 * t2)
    np.abs(t, out=t)
    t -= 1.0
    t *= half_w
    return np.maximum(d, t, out=d)


def ramp(d: np.ndarray, px: float, soft: float = 1.0) -> np.ndarray:
    """Coverage in [0,1] from a signed distance (negative inside), in place; soft widens the edge."""
    d *= -px / soft
    d += 0.5
    np.clip(d, 0.0, 1.0, out=d)
    return d


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a)


@dataclass
class View:
    """A rectangular window of the canvas: coordinates, premultiplied colour [3,N,h,w], coverage [N,h,w]."""

    u: np.ndarray
    v: np.ndarray
    x: np.ndarray
    y: np.ndarray
    rgb: np.ndarray
    alpha: np.ndarray
    px: float

    def paint(self, a: np.ndarray, colour: np.ndarray, cover: bool = True) -> None:
        """Composite a layer of coverage a [N,h,w] and colour [N,3] over the window.

        cover=False skips the foreground-mask update, for layers that lie inside the face.
        """
        # torch's fused lerp_ does in one pass (all channels at once) what numpy needs three for.
        w = np.ascontiguousarray(np.broadcast_to(a, self.alpha.shape), dtype=F32)
        weight = _t(w if w.flags.writeable else w.copy())  # torch refuses read-only buffers
        target = _t(self.rgb)
        end = _t(np.array(colour, dtype=F32).T.copy())[:, :, None, None]
        target.lerp_(end.expand_as(target), weight.expand_as(target))
        if cover:
            target = _t(self.alpha)
            target.lerp_(torch.ones(()).expand_as(target), weight)


def _span(a: float, b: float, px: float, size: int) -> slice:
    lo = int(np.floor((a + 1.0) * px)) - 1
    hi = int(np.ceil((b + 1.0) * px)) + 1
    return slice(max(lo, 0), min(hi, size))


class Canvas:
    """Foreground layers of N images of size S, drawn in head-local coordinates (u, v).

    (u, v) is the image frame rotated by the head's roll about its centre; it is computed
    per window, never for the whole image, since most layers cover a small part of it.
    """

    def __init__(self, n: int, size: int, centre: tuple[np.ndarray, np.ndarray], angle: np.ndarray):
        self.n, self.size, self.px = n, size, size / 2.0
        grid = ((np.arange(size, dtype=F32) + 0.5) / size * 2.0 - 1.0)
        self.x, self.y = grid.reshape(1, 1, size), grid.reshape(1, size, 1)
        self.cx, self.cy = col(centre[0]), col(centre[1])
        self.angle = np.asarray(angle, dtype=F32)
        self.cos, self.sin = col(np.cos(angle)), col(np.sin(angle))
        self.rgb = np.zeros((3, n, size, size), F32)
        self.alpha = np.zeros((n, size, size), F32)

    def coords(self, idx: np.ndarray | slice, rs: slice, cs: slice) -> tuple[np.ndarray, np.ndarray]:
        """Head-local (u, v) of images idx over rows rs and columns cs."""
        dx, dy = self.x[:, :, cs] - self.cx[idx], self.y[:, rs, :] - self.cy[idx]
        c, s = self.cos[idx], self.sin[idx]
        return c * dx + s * dy, c * dy - s * dx

    def take(self, idx: np.ndarray | None = None) -> "SubCanvas":
        """A drawing target over images idx (default all); layers most images lack draw on few."""
        return SubCanvas(self, slice(None) if idx is None else idx)


class SubCanvas:
    """Images idx of a Canvas, drawn window by window.

    With all images, windows paint straight into the canvas. With a subset, a window is
    gathered into copies and written back when the next one is asked for (or on commit).
    """

    def __init__(self, parent: Canvas, idx: np.ndarray | slice):
        self.parent, self.idx = parent, idx
        self.n = parent.n if isinstance(idx, slice) else len(idx)
        self.size, self.px = parent.size, parent.px
        self._open: tuple[slice, slice, View] | None = None
        # Extremes of roll and head centre here, so windows fit these images, not all possible ones.
        angle, cx = parent.angle[idx], parent.cx[idx]
        self.roll_range = (float(angle.min()), float(angle.max())) if self.n else (0.0, 0.0)
        self.centre_range = (float(cx.min()), float(cx.max())) if self.n else (0.0, 0.0)

    def window(self, y0: float, y1: float, x0: float, x1: float) -> View:
        """The image rectangle [x0,x1]×[y0,y1] (image units, widened to whole pixels) as a View."""
        self.commit()
        c = self.parent
        rs, cs = _span(y0, y1, self.px, self.size), _span(x0, x1, self.px, self.size)
        sel = (self.idx, rs, cs)
        u, v = c.coords(self.idx, rs, cs)
        view = View(u, v, c.x[:, :, cs], c.y[:, rs, :], c.rgb[(slice(None), *sel)], c.alpha[sel], self.px)
        if not isinstance(self.idx, slice):
            self._open = (rs, cs, view)  # fancy indexing copied: write back later
        return view

    def commit(self) -> None:
        """Write the open window back into the parent canvas."""
        if self._open is None:
            return
        rs, cs, view = self._open
        self.parent.rgb[:, self.idx, rs, cs] = view.rgb
        self.parent.alpha[self.idx, rs, cs] = view.alpha
        self._open = None
