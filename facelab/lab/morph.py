"""Morphing and attribute arithmetic in latent space (seeds 003 and 004).

Morphing interpolates every edit level between two codes, linearly or spherically (slerp keeps the
norm of Gaussian latents, so midpoints do not shrink towards the washed-out prior mean).
Arithmetic adds strength × attribute direction on one level: "+Smiling −Eyeglasses".
"""

from __future__ import annotations

from typing import Mapping

import torch

from facelab.hub import Bundle
from facelab.lab.bundles import LabError
from facelab.lab.latents import Code, cat, decode, edit_levels
from facelab.lab.probes import ARITHMETIC_METHODS, directions
from facelab.lab.traverse import level_index

METHODS = ("linear", "spherical")
MAX_FRAMES = 64


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Rows a + t (b − a) for each t: [T, *a.shape[1:]] from single rows a, b [1, ...]."""
    t = t.reshape(-1, *([1] * (a.dim() - 1))).to(a)
    return a + t * (b - a)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Spherical interpolation of flattened rows (norms interpolated linearly); lerp when a ∥ b."""
    fa, fb = a.reshape(1, -1).double(), b.reshape(1, -1).double()
    na, nb = fa.norm(dim=1, keepdim=True), fb.norm(dim=1, keepdim=True)
    if float(na) < eps or float(nb) < eps:
        return lerp(a, b, t)
    ua, ub = fa / na, fb / nb
    omega = torch.arccos((ua * ub).sum().clamp(-1.0, 1.0))
    if float(omega.sin().abs()) < eps:
        return lerp(a, b, t)
    tt = t.double().reshape(-1, 1)
    direction = (torch.sin((1 - tt) * omega) * ua + torch.sin(tt * omega) * ub) / omega.sin()
    out = direction * ((1 - tt) * na + tt * nb)
    return out.reshape(len(tt), *a.shape[1:]).to(a)


def interpolate(a: Code, b: Code, frames: int, method: str = "spherical") -> Code:
    """frames codes from a (first) to b (last), every level (and CVAE attributes) interpolated."""
    if method not in METHODS:
        raise LabError(f"interpolation must be one of {', '.join(METHODS)}; got {method!r}")
    if not 2 <= int(frames) <= MAX_FRAMES:
        raise LabError(f"frames must be between 2 and {MAX_FRAMES}, got {frames}")
    t = torch.linspace(0.0, 1.0, int(frames))
    fn = slerp if method == "spherical" else lerp
    levels = [fn(za[:1], zb[:1].to(za), t.to(za.device)) for za, zb in zip(a.levels, b.levels)]
    attrs = None
    if a.attributes is not None and b.attributes is not None:
        attrs = lerp(a.attributes[:1], b.attributes[:1].to(a.attributes), t.to(a.attributes.device))
    return Code(levels, attrs)


def morph(bundle: Bundle, a: Code, b: Code, frames: int, method: str = "spherical") -> torch.Tensor:
    """Images [frames, 3, S, S] from face a to face b."""
    return decode(bundle, interpolate(a, b, frames, method))


def parse_terms(terms: Mapping[str, float] | None) -> dict[str, float]:
    """Non-zero attribute strengths, e.g. {'Smiling': 1.5, 'Eyeglasses': -1}."""
    out = {str(k): float(v) for k, v in (terms or {}).items() if k and float(v) != 0.0}
    if not out:
        raise LabError("give at least one attribute with a non-zero strength, e.g. Smiling +1.5")
    return out


def arithmetic(bundle: Bundle, start: Code, level: str | int | None,
               terms: Mapping[str, float]) -> tuple[torch.Tensor, list[str], str]:
    """[start, start + each term alone, start + all terms] as images, their labels, and the directions' key."""
    k = level_index(bundle, level)
    spec = edit_levels(bundle)[k]
    strengths = parse_terms(terms)
    single = len(bundle.model.latent_levels) == 1
    vecs, key = directions(bundle, spec.name, single, spec.size, ARITHMETIC_METHODS)
    unknown = sorted(set(strengths) - set(vecs))
    if unknown:
        raise LabError(f"no direction for {unknown} on level {spec.name}; known: {', '.join(sorted(vecs))}")
    one = start.take([0])
    base = one.flat(k).float().cpu()
    moves = [strengths[n] * torch.as_tensor(vecs[n], dtype=torch.float32) for n in strengths]
    rows = [base, *(base + m for m in moves)]
    if len(moves) > 1:
        rows.append(base + torch.stack(moves).sum(0))
    images = decode(bundle, cat([one.with_flat(k, r) for r in rows]))
    labels = ["start", *(f"{s:+g} {n}" for n, s in strengths.items())]
    if len(moves) > 1:
        labels.append("all together")
    return images, labels, key
