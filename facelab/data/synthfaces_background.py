"""Synthfaces backgrounds: flat, gradient, stripes, blobs, noise texture, in a factor colour.

Kind and colour are factors; angles, frequencies, blob positions and the noise field are
nuisance drawn from each image's seed.
"""

from __future__ import annotations

import numpy as np

from facelab.data.synthfaces_draw import col, ellipse_d, ramp
from facelab.data.synthfaces_params import BACKGROUND

F32 = np.float32
N_BLOBS = 5
NOISE_RES = (4, 8)
SLOTS = 4 + 4 * N_BLOBS + sum(r * r for r in NOISE_RES)


def _interp_matrix(size: int, res: int) -> np.ndarray:
    """[size,res] linear-interpolation weights, so a [res,res] field upsamples with two matmuls."""
    pos = ((np.arange(size) + 0.5) / size) * res - 0.5
    lo = np.clip(np.floor(pos), 0, res - 1).astype(np.int64)
    hi = np.minimum(lo + 1, res - 1)
    frac = np.clip(pos - lo, 0.0, 1.0)
    m = np.zeros((size, res), F32)
    m[np.arange(size), lo] += 1.0 - frac
    m[np.arange(size), hi] += frac
    return m


def _planes(base: np.ndarray, other: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
    """Blend two per-image colours [n,3] by t [n,H,W] into three planes."""
    return [col(base[:, k]) + t * col(other[:, k] - base[:, k]) for k in range(3)]


def _direction(x: np.ndarray, y: np.ndarray, angle: np.ndarray) -> np.ndarray:
    return x * col(np.cos(angle)) + y * col(np.sin(angle))


def _kind(kind: int, c: np.ndarray, u: np.ndarray, x: np.ndarray, y: np.ndarray, size: int) -> list[np.ndarray]:
    """Planes for n images of one background kind, colour c [n,3], nuisance uniforms u [n,SLOTS]."""
    n = len(c)
    light = c * 0.55 + 0.45 * 0.95
    dark = c * 0.55
    angle = (u[:, 0] * 2 * np.pi).astype(F32)
    if kind == 0:
        return [np.broadcast_to(col(c[:, k]), (n, size, size)) for k in range(3)]
    if kind == 1:
        t = np.clip(0.5 + 0.6 * _direction(x, y, angle), 0.0, 1.0)
        return _planes(dark, light, t)
    if kind == 2:
        freq = col(np.pi * (3.0 + 4.0 * u[:, 1]))
        t = np.sin(_direction(x, y, angle) * freq + col(2 * np.pi * u[:, 2]))
        t *= 2.0
        t += 0.5
        np.clip(t, 0.0, 1.0, out=t)
        return _planes(c, light, t)
    if kind == 3:
        t = np.zeros((n, size, size), F32)
        for b in range(N_BLOBS):
            cx, cy, r, tone = (u[:, 4 + 4 * b + k] for k in range(4))
            d = ellipse_d(x, y, col(1.8 * cx - 0.9), col(1.8 * cy - 0.9), col(0.15 + 0.3 * r), col(0.15 + 0.3 * r))
            a = ramp(d, size / 2.0)
            t += a * (col(np.where(tone < 0.5, -1.0, 1.0)) - t)
        pos, neg = np.maximum(t, 0.0), np.maximum(-t, 0.0)
        planes = _planes(c, light, pos)
        return [pl + neg * col(dark[:, k] - c[:, k]) for k, pl in enumerate(planes)]
    t = np.zeros((n, size, size), F32)
    start = 4 + 4 * N_BLOBS
    for res, amp in zip(NOISE_RES, (0.6, 0.4)):
        m = _interp_matrix(size, res)
        field = u[:, start:start + res * res].reshape(n, res, res).astype(F32)
        t += amp * (m @ field @ m.T)
        start += res * res
    return _planes(dark, light, t)


def render_background(kinds: np.ndarray, colours: np.ndarray, uniforms: np.ndarray, size: int) -> list[np.ndarray]:
    """Background planes (3 × [n,H,W] float32 in [0,1]) for per-image kind and colour codes."""
    n = len(kinds)
    grid = ((np.arange(size, dtype=F32) + 0.5) / size * 2.0 - 1.0)
    x, y = grid.reshape(1, 1, size), grid.reshape(1, size, 1)
    planes = [np.empty((n, size, size), F32) for _ in range(3)]
    c = BACKGROUND[colours]
    for kind in np.unique(kinds):
        idx = np.nonzero(kinds == kind)[0]
        for plane, part in zip(planes, _kind(int(kind), c[idx], uniforms[idx], x, y, size)):
            plane[idx] = part
    return planes
