"""Small synthfaces layers inside the face: eyes, brows, nose, mouth, facial hair, glasses, age lines."""

from __future__ import annotations

import numpy as np

from facelab.data.synthfaces_draw import SubCanvas, View, col, curve_d, ellipse_d, ramp, ring_d
from facelab.data.synthfaces_head import egg_u, head_window
from facelab.data.synthfaces_params import FaceParams

F32 = np.float32
EYE_V = -0.02
BROW_V = -0.125
# Per smile level (frown, neutral, slight, smile, grin): mouth bend, opening, half-width.
MOUTH_BEND = np.array([-0.035, 0.0, 0.03, 0.05, 0.06], F32)
MOUTH_OPEN = np.array([0.0, 0.0, 0.0, 0.05, 0.09], F32)
MOUTH_W = np.array([0.10, 0.10, 0.115, 0.135, 0.16], F32)
MOUTH_V = 0.27
DARK = np.array([0.10, 0.07, 0.07], F32)


def _rgb(n: int, rgb: np.ndarray | list[float]) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, F32), (n, 3))


def _line(view: View, half: float) -> float:
    """Half-thickness of a stroke: at least half a pixel, so thin lines survive small sizes."""
    return max(half, 0.55 / view.px)


def eye_geometry(p: FaceParams, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre u and width scale of one eye; yaw moves both eyes and foreshortens the far one."""
    return p.a * (0.40 * sign + 0.18 * p.yaw), 1.0 - 0.25 * p.yaw * sign


def mouth_geometry(p: FaceParams) -> tuple[np.ndarray, np.ndarray]:
    """Centre u and half-width of the mouth (it follows yaw like the nose, a little less)."""
    return p.a * 0.22 * p.yaw, MOUTH_W[p.smile] * (p.a / 0.42)


def draw_eyes(canvas: SubCanvas, p: FaceParams) -> None:
    """Eyes with lash line, white, iris and pupil, and brows above them; grins squint."""
    n = canvas.n
    male = p.sex == 1
    eye_h = col(np.where(male, 0.043, 0.05) * np.where(p.smile == 4, 0.72, 1.0))
    thick = col(np.where(male, 0.03, 0.016))
    arch = col(np.where(male, 0.008, 0.03))
    female = col(~male)
    tilt = col(np.where(p.smile == 0, 0.03, 0.0))  # frowns pull the inner brow ends down
    for sign in (-1.0, 1.0):
        lo, hi = (-0.4, 0.06) if sign < 0 else (-0.06, 0.4)
        view = head_window(canvas, lo, hi, -0.19, 0.05)
        u, v = view.u, view.v
        cu, scale = (col(x) for x in eye_geometry(p, sign))
        ew = 0.085 * scale
        lash = ellipse_d(u, v, cu, EYE_V - 0.006, ew + 0.014, eye_h + 0.014)
        view.paint(ramp(lash, view.px), _rgb(n, DARK), cover=False)
        flick = curve_d(u, v, cu + sign * (ew + 0.012), EYE_V - 0.75 * eye_h, 0.028, -0.018, _line(view, 0.009))
        view.paint(ramp(flick, view.px) * female, _rgb(n, DARK), cover=False)
        white = ramp(ellipse_d(u, v, cu, EYE_V, ew, eye_h), view.px)
        view.paint(white, _rgb(n, [0.96, 0.96, 0.95]), cover=False)
        iu = cu + col(0.02 * p.yaw)
        iris = ramp(ellipse_d(u, v, iu, EYE_V, 0.038 * scale, 0.038), view.px)
        iris *= white
        view.paint(iris, p.iris, cover=False)
        pupil = ramp(ellipse_d(u, v, iu, EYE_V, 0.017, 0.017), view.px)
        pupil *= white
        view.paint(pupil, _rgb(n, [0.02, 0.02, 0.02]), cover=False)
        bw = 0.1 * scale
        brow = curve_d(u, v - tilt * (sign * (cu - u) / bw), cu, BROW_V, bw, arch,
                       np.maximum(thick, _line(view, 0.0)))
        view.paint(ramp(brow, view.px), p.hair * 0.55 + 0.04, cover=False)


def draw_nose(canvas: SubCanvas, p: FaceParams) -> None:
    """A shaded nose ridge and tip; the nose sticks out most, so yaw moves it furthest."""
    view = head_window(canvas, -0.3, 0.3, -0.05, 0.22)
    u, v = view.u, view.v
    nu = col(p.a * 0.30 * p.yaw)
    ridge = ramp(ellipse_d(u, v, nu + 0.012, 0.07, 0.028, 0.085), view.px, soft=2.0)
    view.paint(ridge * 0.4, p.skin * 0.75, cover=False)
    tip = ramp(ellipse_d(u, v, nu, 0.145, 0.05, 0.026), view.px)
    view.paint(tip * 0.55, p.skin * 0.68, cover=False)
    nostrils = ramp(ellipse_d(u, v, nu, 0.158, 0.03, 0.011), view.px)
    view.paint(nostrils * 0.6, p.skin * 0.4, cover=False)


def draw_mouth(canvas: SubCanvas, p: FaceParams) -> None:
    """Lips bent by the smile level, open with teeth for smile and grin; lipstick thickens and reddens."""
    n = canvas.n
    view = head_window(canvas, -0.36, 0.36, 0.15, 0.46)
    u, v = view.u, view.v
    mu, w = (col(x) for x in mouth_geometry(p))
    bend, opening = col(MOUTH_BEND[p.smile]), col(MOUTH_OPEN[p.smile])
    t = (u - mu) / w
    arc = 1.0 - t * t
    centre = MOUTH_V + bend * arc
    top = centre - 0.25 * opening * arc
    bot = centre + opening * arc
    side = np.abs(u - mu) - w
    lip = col(np.where(p.lipstick == 1, 0.026, np.where(p.sex == 1, 0.011, 0.018))) * (0.35 + 0.65 * arc)
    d = np.maximum(np.maximum(top - lip - v, v - bot - lip), side)
    lip_colour = np.where(p.lipstick[:, None] == 1, np.array([0.78, 0.09, 0.2], F32),
                          p.skin * np.where(p.sex[:, None] == 1, np.array([0.8, 0.55, 0.5], F32),
                                            np.array([0.92, 0.58, 0.6], F32)))
    view.paint(ramp(d, view.px), lip_colour, cover=False)
    inner = np.maximum(np.maximum(top - v, v - bot), side + 0.06 * w)
    view.paint(ramp(inner.copy(), view.px), _rgb(n, [0.28, 0.05, 0.06]), cover=False)
    teeth = np.maximum(inner, v - (top + 0.5 * (bot - top)))
    a = ramp(teeth, view.px)
    a *= col(p.smile >= 3)
    view.paint(a, _rgb(n, [0.97, 0.96, 0.92]), cover=False)


def draw_beard(canvas: SubCanvas, p: FaceParams) -> None:
    """Beard over jaw and chin, a little past the face outline; a full beard climbs the cheeks."""
    view = head_window(canvas, -0.52, 0.52, -0.12, 0.58)
    u, v = view.u, view.v
    full = p.beard == 3
    start = col(np.where(full, 0.22, 0.34))
    drop = col(np.where(full, 0.27, 0.42))
    d = ellipse_d(egg_u(view, p), v, 0.0, 0.03, col(p.a * 1.05), p.b * 1.06)
    un = u / col(p.a)
    un *= un
    np.maximum(d, start - drop * un - v, out=d)
    a = ramp(d, view.px, soft=1.6)
    view.paint(a * 0.95, p.hair * 0.8)


def draw_moustache(canvas: SubCanvas, p: FaceParams) -> None:
    """A moustache over the upper lip, drooping at the ends."""
    view = head_window(canvas, -0.4, 0.4, 0.12, 0.36)
    u, v = view.u, view.v
    mu, w = (col(x) for x in mouth_geometry(p))
    bend = col(MOUTH_BEND[p.smile])
    d = curve_d(u, v, mu, MOUTH_V - 0.052 + 0.3 * bend, w + 0.035, 0.05, 0.028)
    view.paint(ramp(d, view.px), p.hair * 0.78, cover=False)


def draw_glasses(canvas: SubCanvas, p: FaceParams) -> None:
    """Frames round both eyes with bridge and arms; clear lenses tint, sunglasses hide the eyes."""
    n = canvas.n
    view = head_window(canvas, -0.5, 0.5, -0.16, 0.1)
    u, v = view.u, view.v
    sun = p.glasses == 2
    lens_alpha = col(np.where(sun, 0.93, 0.22))
    lens_colour = np.where(sun[:, None], np.array([0.05, 0.05, 0.08], F32), np.array([0.82, 0.9, 0.97], F32))
    frame = _rgb(n, [0.09, 0.08, 0.08])
    th = _line(view, 0.014)
    edges = []
    for sign in (-1.0, 1.0):
        cu, scale = (col(x) for x in eye_geometry(p, sign))
        lw = 0.125 * scale
        view.paint(ramp(ellipse_d(u, v, cu, EYE_V, lw, 0.09), view.px) * lens_alpha, lens_colour, cover=False)
        view.paint(ramp(ring_d(u, v, cu, EYE_V, lw, 0.09, th), view.px), frame)
        edges.append((cu - sign * lw, cu + sign * lw))
    bridge = _bar(u, v, edges[0][0], edges[1][0], EYE_V - 0.02, th)
    view.paint(ramp(bridge, view.px), frame, cover=False)
    for (_, outer), sign in zip(edges, (-1.0, 1.0)):
        arm = _bar(u, v, outer, col(sign * 0.98 * p.a), EYE_V - 0.025, th)
        view.paint(ramp(arm, view.px), frame)


def _bar(u: np.ndarray, v: np.ndarray, u0: np.ndarray, u1: np.ndarray, v0: float, half: float) -> np.ndarray:
    """Signed distance to a horizontal bar from u0 to u1 (either order) at height v0."""
    return np.maximum(np.abs(v - v0) - half, np.abs(u - 0.5 * (u0 + u1)) - 0.5 * np.abs(u1 - u0))


def draw_age(canvas: SubCanvas, p: FaceParams) -> None:
    """Age cues: smile folds from middle age; more forehead lines and eye bags when old."""
    old = col(p.age == 2)
    strength = col(np.where(p.age == 1, 0.45, 0.7))
    crease = p.skin * 0.55
    view = head_window(canvas, -0.4, 0.4, 0.05, 0.36)
    u, v = view.u, view.v
    mu, w = (col(x) for x in mouth_geometry(p))
    d = ring_d(u, v, mu, 0.2, w + 0.07, 0.15, _line(view, 0.008))
    np.maximum(d, np.maximum(0.1 - v, v - 0.31), out=d)
    np.maximum(d, 0.45 * w - np.abs(u - mu), out=d)
    view.paint(ramp(d, view.px) * strength, crease, cover=False)
    view = head_window(canvas, -0.25, 0.25, -0.34, -0.17)
    for k, lv in enumerate((-0.2, -0.245, -0.29)):
        on = strength if k == 0 else strength * old
        d = curve_d(view.u, view.v, 0.0, lv, 0.16, 0.02, _line(view, 0.007))
        view.paint(ramp(d, view.px) * on, crease, cover=False)
    for sign in (-1.0, 1.0):
        lo, hi = (-0.4, 0.1) if sign < 0 else (-0.1, 0.4)
        view = head_window(canvas, lo, hi, 0.0, 0.12)
        cu, scale = (col(x) for x in eye_geometry(p, sign))
        d = curve_d(view.u, view.v, cu, EYE_V + 0.082, 0.065 * scale, -0.018, _line(view, 0.007))
        view.paint(ramp(d, view.px) * (old * 0.5), crease, cover=False)


def draw_makeup(canvas: SubCanvas, p: FaceParams) -> None:
    """Blush on the cheeks with lipstick, so make-up reads beyond the lips alone."""
    view = head_window(canvas, -0.45, 0.45, 0.0, 0.26)
    for sign in (-1.0, 1.0):
        cu, _ = eye_geometry(p, sign)
        a = ramp(ellipse_d(view.u, view.v, col(cu * 1.05), 0.13, 0.075, 0.045), view.px, soft=6.0)
        view.paint(a * 0.35, _rgb(canvas.n, [0.93, 0.42, 0.48]), cover=False)
