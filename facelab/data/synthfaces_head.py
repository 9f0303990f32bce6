"""Large synthfaces layers: shoulders, neck, ears, head outline, hair, and lighting."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from facelab.data.synthfaces_draw import Canvas, SubCanvas, View, col, curve_d, ellipse_d, ramp
from facelab.data.synthfaces_params import HEAD_Y, FaceParams

F32 = np.float32

# Tables indexed by hair style (short, long, bangs, bald). The front cap (outline and hairline
# v = LINE_0 + LINE_2 * (u/a)^2) is drawn for all but bald; back hair only for long and bangs,
# so those columns of the other styles are never read.
CAP_W = np.array([1.10, 1.15, 1.15, 1.06], F32)
CAP_H = np.array([1.07, 1.10, 1.10, 1.04], F32)
LINE_0 = np.array([-0.29, -0.31, -0.16, 0.0], F32)
LINE_2 = np.array([0.30, 0.42, 0.26, 0.0], F32)
BACK_C = np.array([0.0, 0.16, 0.0, 0.0], F32)
BACK_W = np.array([1.0, 1.34, 1.22, 1.0], F32)
BACK_H = np.array([0.5, 0.78, 0.56, 0.5], F32)
BACK_CUT = np.array([0.0, 0.80, 0.34, 0.0], F32)


@lru_cache(maxsize=4096)
def _image_box(rolls: tuple[float, float], centres: tuple[float, float],
               box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Image rectangle (y0, y1, x0, x1) holding a head-local box at every roll and centre in range."""
    u0, u1, v0, v1 = box
    th = np.linspace(*rolls, 5)[:, None]
    uu = np.array([u0, u0, u1, u1])[None]
    vv = np.array([v0, v1, v0, v1])[None]
    xs = np.cos(th) * uu - np.sin(th) * vv
    ys = np.sin(th) * uu + np.cos(th) * vv + HEAD_Y
    return float(ys.min()), float(ys.max()), float(xs.min() + centres[0]), float(xs.max() + centres[1])


def head_window(canvas: SubCanvas, u0: float, u1: float, v0: float, v1: float) -> View:
    """The window that holds the head-local box [u0,u1]×[v0,v1] for every image of the canvas."""
    return canvas.window(*_image_box(canvas.roll_range, canvas.centre_range, (u0, u1, v0, v1)))


def egg_u(view: View, p: FaceParams) -> np.ndarray:
    """Horizontal coordinate squeezed towards the chin, so ellipses in (egg_u, v) are egg-shaped."""
    return view.u * (1.0 + col(p.taper) * view.v)


def draw_body(canvas: SubCanvas, p: FaceParams) -> None:
    """Shoulders in nuisance-coloured clothes and a neckline opening (unrotated: roll is the head's)."""
    view = canvas.window(0.45, 1.0, -1.0, 1.0)
    x, y = view.x, view.y
    hx = col(p.hx)
    shoulder_w = col(0.88 + 0.10 * p.sex)
    d = ellipse_d(x, y, 0.5 * hx, 1.25, shoulder_w, 0.58)
    view.paint(ramp(d, view.px), p.cloth)
    d = ellipse_d(x, y, hx, 0.66, col(0.18 + 0.03 * p.sex), 0.11)
    view.paint(ramp(d, view.px), p.skin * 0.80)


def draw_neck(canvas: SubCanvas, p: FaceParams) -> None:
    """A neck column from under the chin to the shoulders, in shadowed skin."""
    view = canvas.window(HEAD_Y + 0.15, 0.75, -0.4, 0.4)
    half = col(0.15 + 0.04 * p.sex + 0.1 * (p.a - 0.4))
    d = np.abs(view.x - col(p.hx)) - half
    a = ramp(np.broadcast_to(d, view.alpha.shape).copy(), view.px)
    a *= ramp(view.y - 0.72, view.px)  # ends inside the neckline, so no skin runs over the clothes
    view.paint(a, p.skin * 0.78)


def draw_hair_back(canvas: SubCanvas, p: FaceParams) -> None:
    """Hair behind the head: long hair to the shoulders, a bob with bangs (short hair has none)."""
    view = head_window(canvas, -0.7, 0.7, -0.75, 0.95)
    s = p.style
    d = ellipse_d(view.u, view.v, 0.0, col(BACK_C[s]), col(p.a * BACK_W[s]), col(BACK_H[s]))
    np.maximum(d, view.v - col(BACK_CUT[s]), out=d)
    view.paint(ramp(d, view.px), p.hair * 0.82)


def draw_ears(canvas: SubCanvas, p: FaceParams) -> None:
    """Two ears; they slide opposite to the features with yaw, so the far one hides behind the face."""
    for sign in (-1.0, 1.0):
        view = head_window(canvas, *sorted((sign * 0.18, sign * 0.6)), -0.12, 0.16)
        cu = col(sign * 0.96 * p.a - 0.14 * p.yaw * p.a)
        view.paint(ramp(ellipse_d(view.u, view.v, cu, 0.02, 0.065, 0.12), view.px), p.skin * 0.92)
        a = ramp(ellipse_d(view.u, view.v, cu + 0.008 * sign, 0.03, 0.03, 0.07), view.px)
        view.paint(a * 0.45, p.skin * 0.6, cover=False)


def draw_face(canvas: SubCanvas, p: FaceParams) -> None:
    """The egg-shaped face, wider at the temples than at the chin (squarer jaw for men)."""
    view = head_window(canvas, -0.52, 0.52, -0.52, 0.52)
    d = ellipse_d(egg_u(view, p), view.v, 0.0, 0.0, col(p.a), p.b)
    # A second, flatter ellipse squares the jaw; for women it stays inside the face.
    jaw = ellipse_d(view.u, view.v, 0.0, 0.22, col(p.a * np.where(p.sex == 1, 0.86, 0.6)), 0.27)
    np.minimum(d, jaw, out=d)
    view.paint(ramp(d, view.px), p.skin)


def _cap_outline(view: View, p: FaceParams) -> np.ndarray:
    s = p.style
    return ellipse_d(view.u, view.v, 0.0, -0.04, col(p.a * CAP_W[s]), col(p.b * CAP_H[s]))


def draw_hair_front(canvas: SubCanvas, p: FaceParams) -> None:
    """Hair over the head (not bald): a cap down to a hairline per style; bangs reach the brows."""
    view = head_window(canvas, -0.6, 0.6, -0.62, 0.3)
    s, u, v = p.style, view.u, view.v
    un = u / col(p.a)
    un *= un
    cap = v - col(LINE_0[s])
    cap -= col(LINE_2[s]) * un
    np.maximum(cap, _cap_outline(view, p), out=cap)
    # A soft shadow just outside the hair separates it from skin of a similar colour.
    shadow = ramp(cap - 0.03, view.px, soft=0.06 * view.px)
    shadow *= view.alpha  # only on what is already drawn, never on the background
    view.paint(shadow * 0.35, p.skin * 0.45, cover=False)
    view.paint(ramp(cap, view.px), p.hair)
    _shine(view, p, 0.22)


def draw_bald(canvas: SubCanvas, p: FaceParams) -> None:
    """Bald heads: a fringe of hair at the sides above the ears and a shiny scalp."""
    view = head_window(canvas, -0.6, 0.6, -0.62, 0.1)
    # The fringe turns with the head like the ears do.
    side = np.maximum(0.8 * col(p.a) - np.abs(view.u + col(0.14 * p.yaw * p.a)), np.abs(view.v + 0.1) - 0.13)
    np.maximum(side, _cap_outline(view, p), out=side)
    view.paint(ramp(side, view.px), p.hair)
    _shine(view, p, 0.4)


def _shine(view: View, p: FaceParams, strength: float) -> None:
    # A highlight arc along the crown, the usual cartoon cue for glossy hair or a bald scalp.
    shine = curve_d(view.u, view.v, col(-0.12 * p.a), -0.4, col(0.55 * p.a), 0.09, 0.025)
    view.paint(ramp(shine, view.px, soft=2.5) * strength, np.ones_like(p.hair), cover=False)


def shade(canvas: Canvas, p: FaceParams) -> np.ndarray:
    """Multiplicative lighting [N,H,W] from a sphere-like normal around the head and the light."""
    lx, ly, gain = (col(p.light[:, k]) for k in range(3))
    full = slice(None)
    nx, ny = canvas.coords(full, full, full)
    nx *= col(1.0 / (1.15 * p.a))
    ny += 0.05
    ny *= 1.0 / 0.62
    out = nx * (gain * lx)
    out += ny * (gain * ly)
    nx *= nx
    ny *= ny
    nx += ny
    np.minimum(nx, 2.0, out=nx)
    nx *= -0.12
    out += nx
    out += 1.0
    np.clip(out, 0.5, 1.15, out=out)
    return out
