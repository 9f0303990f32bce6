"""Latent traversals (seed 001's figures): walk one latent level along chosen axes, one grid row per axis.

An axis is a latent dimension (unit step along one coordinate), a PCA component (steps in units of
that component's standard deviation, GANSpace-style) or an attribute direction from the bundle's
probes. Offsets run over linspace(-span, span, steps), added to the start code's level; the other
levels stay as they are, so with an odd number of steps the middle column is the start face itself.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from facelab.hub import Bundle
from facelab.lab.bundles import LabError
from facelab.lab.inputs import SPAN, STEPS, expand_ranges, number, whole
from facelab.lab.latents import Code, decode, edit_levels, random_code
from facelab.lab.probes import directions, pca_basis

AXIS_KINDS = ("latent dimension", "PCA component", "attribute direction")
MAX_AXES = 16
DEFAULT_AXES = 8
EFFECT_STEP, EFFECT_FACES, EFFECT_CHUNK = 2.0, 4, 32  # ±2 prior σ, on 4 faces, 32 dims per decode batch
MAX_RANKED = 256
VISIBLE_EFFECT = 0.05  # mean |Δpixel| on [-1, 1]: about 6 grey levels
_EFFECTS: "weakref.WeakKeyDictionary[torch.nn.Module, dict[int, np.ndarray]]" = weakref.WeakKeyDictionary()


@dataclass
class Axis:
    """One traversal row: its label and its direction [d] in the level's flat coordinates."""

    label: str
    direction: torch.Tensor


def level_index(bundle: Bundle, level: str | int | None) -> int:
    """Index of an edit level given by name or index (None: the first)."""
    names = [s.name for s in edit_levels(bundle)]
    if level is None or level == "":
        return 0
    if isinstance(level, str) and level in names:
        return names.index(level)
    try:
        k = int(level)
    except (TypeError, ValueError):
        k = -1
    if not 0 <= k < len(names):
        raise LabError(f"{bundle.name} has no latent level {level!r}; its levels are {', '.join(names)}")
    return k


def dimension_effects(bundle: Bundle, level: str | int | None) -> np.ndarray:
    """How much each dimension of a level moves the image: mean |Δpixel| between ±EFFECT_STEP on EFFECT_FACES
    prior faces (images in [-1, 1]); computed once per model and level.

    A VAE's posterior means can vary along a dimension the decoder all but ignores (on vae64 a ±2 step
    changes pixels by 0.02-0.47 depending on the dimension), so the decoder's response is what decides
    whether a traversal row shows anything.
    """
    k = level_index(bundle, level)
    cache = _EFFECTS.setdefault(bundle.model, {})
    if k not in cache:
        code = random_code(bundle, EFFECT_FACES, 0)
        base = code.flat(k).float().cpu()
        n, d = base.shape
        effects = np.zeros(d)
        for lo in range(0, d, EFFECT_CHUNK):
            dims = list(range(lo, min(d, lo + EFFECT_CHUNK)))
            shifted = [base + sign * EFFECT_STEP * torch.eye(d)[i] for i in dims for sign in (1.0, -1.0)]
            imgs = decode(bundle, code.take(list(range(n)) * len(shifted)).with_flat(k, torch.cat(shifted)))
            imgs = imgs.view(len(dims), 2, n, *imgs.shape[1:])
            effects[lo:lo + len(dims)] = (imgs[:, 0] - imgs[:, 1]).abs().flatten(1).mean(1).numpy()
        cache[k] = effects
    return cache[k]


def dimension_order(bundle: Bundle, level: str | int | None) -> tuple[list[int], str]:
    """A level's dimensions, the ones that change the image most first, and a note saying how many do."""
    size = edit_levels(bundle)[level_index(bundle, level)].size
    if size > MAX_RANKED:  # a spatial HVAE level: 2 decodes per dimension would take too long to list it
        return list(range(size)), f"{size} dimensions, in index order (too many to rank by effect quickly)"
    effects = dimension_effects(bundle, level)
    order = np.argsort(-effects, kind="stable").tolist()
    visible = int((effects > VISIBLE_EFFECT).sum())
    return order, (f"dimensions ordered by how much a ±{EFFECT_STEP:g} step changes the image; {visible} of "
                   f"{effects.size} change it visibly (mean |Δpixel| > {VISIBLE_EFFECT} on a −1…1 scale; "
                   f"largest {effects.max():.2f})")


def axis_choices(bundle: Bundle, level: str | int | None, kind: str) -> list[str]:
    """What the axis picker offers for a level and axis kind (dims most active first; PCs 1-based)."""
    k = level_index(bundle, level)
    spec = edit_levels(bundle)[k]
    if kind == AXIS_KINDS[0]:
        return [str(i) for i in dimension_order(bundle, k)[0]]
    if kind == AXIS_KINDS[1]:
        return [f"PC{i + 1}" for i in range(len(pca_basis(bundle, spec.name, _single(bundle), spec.size).std))]
    if kind == AXIS_KINDS[2]:
        return sorted(directions(bundle, spec.name, _single(bundle), spec.size)[0])
    raise LabError(f"axis kind must be one of {', '.join(AXIS_KINDS)}; got {kind!r}")


def _single(bundle: Bundle) -> bool:
    return len(bundle.model.latent_levels) == 1


def _index(text: str, size: int, what: str, one_based: bool = False) -> int:
    raw = text[2:] if text.upper().startswith("PC") else text
    try:
        i = int(raw) - (1 if one_based else 0)
    except ValueError:
        raise LabError(f"{what} {text!r} is not a number") from None
    if not 0 <= i < size:
        lo, hi = (1, size) if one_based else (0, size - 1)
        raise LabError(f"{what} {text!r} is out of range ({lo}..{hi})")
    return i


def make_axes(bundle: Bundle, level: str | int | None, kind: str, which: Sequence[str | int]) -> list[Axis]:
    """Axes of one kind on one level; empty `which` picks the first few (dims, PCs, or attributes)."""
    k = level_index(bundle, level)
    spec = edit_levels(bundle)[k]
    # bounded while expanding: "0-20000000" is refused from its ends, never turned into 20M strings
    items = expand_ranges(which, "axes", MAX_AXES) or axis_choices(bundle, k, kind)[:DEFAULT_AXES]
    if kind == AXIS_KINDS[0]:
        eye = torch.eye(spec.size)
        return [Axis(f"{spec.name}[{i}]", eye[i]) for i in (_index(t, spec.size, "dimension") for t in items)]
    if kind == AXIS_KINDS[1]:
        basis = pca_basis(bundle, spec.name, _single(bundle), spec.size)
        out = []
        for t in items:
            i = _index(t, len(basis.std), "component", one_based=True)
            vec = torch.as_tensor(basis.components[i] * basis.std[i], dtype=torch.float32)
            out.append(Axis(f"PC{i + 1} ({basis.var_ratio[i]:.0%})", vec))
        return out
    vecs, _ = directions(bundle, spec.name, _single(bundle), spec.size)
    unknown = [t for t in items if t not in vecs]
    if unknown:
        raise LabError(f"no direction for {unknown} on level {spec.name}; known: {', '.join(sorted(vecs))}")
    return [Axis(t, torch.as_tensor(vecs[t], dtype=torch.float32)) for t in items]


def offsets(span: float, steps: int) -> torch.Tensor:
    """The steps offsets linspace(-span, span); validated."""
    n = whole(steps, "steps", *STEPS)
    half = number(span, "range ±", *SPAN, lo_open=True)
    return torch.linspace(-half, half, n)


def traverse(bundle: Bundle, start: Code, level: str | int | None, axes: Sequence[Axis],
             span: float, steps: int) -> torch.Tensor:
    """Images [len(axes)·steps, 3, S, S], row-major: row r walks axis r from -span to +span."""
    k = level_index(bundle, level)
    ts = offsets(span, steps)
    base = start.take([0]).flat(k).float().cpu()  # [1, d]
    dirs = torch.stack([a.direction.float() for a in axes])  # [R, d]
    values = (base[None] + ts[None, :, None] * dirs[:, None, :]).reshape(-1, base.shape[1])
    return decode(bundle, start.take([0]).with_flat(k, values))
