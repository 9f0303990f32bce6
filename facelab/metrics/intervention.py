"""Intervention effects: how far each latent moves when one ground-truth factor changes, all else equal.

The β-VAE metric says *that* a factor is not singled out; this says *why*. Render n faces, change
factor k to another value with the same nuisance seed (so only that factor differs), encode both, and
average |Δ code| per dimension over the dimension's spread across faces. An effect of about 1 is a
full-range move; a factor no dimension responds to is not encoded at all, and a dimension that
responds to many factors is entangled.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

PairEncoder = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (factors [n,F], nuisance seeds [n]) -> codes [n,D]


def _draws(factor_sizes: Sequence[int], n: int, seed: int) -> tuple[np.random.Generator, np.ndarray, np.ndarray]:
    """(rng, base factors [n,F] uniform over each factor's values, nuisance seeds [n]) for n faces."""
    rng = np.random.default_rng(seed)
    base = np.stack([rng.integers(0, int(s), n) for s in factor_sizes], axis=1)
    return rng, base, rng.integers(0, 2**62, n, dtype=np.int64).astype(np.uint64)


def _change(base: np.ndarray, k: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """base with factor k moved to another of its values in every row (the intervention)."""
    changed = base.copy()
    changed[:, k] = (base[:, k] + rng.integers(1, size, len(base))) % size
    return changed


def intervention_effects(encode: PairEncoder, factor_sizes: Sequence[int], n: int = 1000, seed: int = 0,
                         min_std: float = 0.1) -> dict[str, np.ndarray]:
    """{"effects" [F,D] (mean |Δz| / std z per factor change; 0 on inactive dims), "std" [D], "active" [D]}."""
    if n < 2:
        raise ValueError(f"n must be >= 2 faces, got {n}")
    rng, base, seeds = _draws(factor_sizes, n, seed)
    codes = np.asarray(encode(base, seeds), dtype=np.float64).reshape(n, -1)
    std = codes.std(axis=0)
    # collapsed dimensions (posterior = prior everywhere) would divide noise by ~0
    active = std > min_std
    effects = np.zeros((len(factor_sizes), codes.shape[1]))
    for k, size in enumerate(factor_sizes):
        moved_codes = np.asarray(encode(_change(base, k, int(size), rng), seeds), dtype=np.float64)
        moved = np.abs(moved_codes.reshape(n, -1) - codes).mean(axis=0)
        effects[k, active] = moved[active] / std[active]
    return {"effects": effects, "std": std, "active": active}


def effect_summary(effects: np.ndarray, names: Sequence[str], threshold: float = 0.5) -> list[dict[str, object]]:
    """Per factor: strongest dimension and its effect, summed effect, and dimensions moved by > threshold."""
    rows = []
    for k, name in enumerate(names):
        j = int(np.argmax(effects[k]))
        rows.append({"factor": name, "top_dim": j, "top_effect": float(effects[k, j]),
                     "total": float(effects[k].sum()), "dims_over": int((effects[k] > threshold).sum())})
    return rows


PairReconstructor = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]  # -> (images, recons) [n,C,H,W]


def reconstruction_response(reconstruct: PairReconstructor, factor_sizes: Sequence[int], n: int = 256,
                            seed: int = 0, threshold: float = 0.05) -> dict[str, np.ndarray]:
    """Per factor: how much of its pixel change survives reconstruction.

    A code can only single out a factor its decoder draws, so this says which factors a model drops
    before any latent is looked at. Pixels whose channel-summed |Δ| exceeds threshold when factor k
    changes (same nuisance seed) are the factor's pixels; "input" and "kept" are the mean |Δ| there in
    the images and in their reconstructions, "ratio" = kept / input (1: fully drawn; 0: dropped), and
    "pixels" the factor's pixels per face. Returns arrays [F]; a factor that changes no pixel has ratio
    NaN (nothing to draw), not 0 (dropped).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1 face, got {n}")
    rng, base, seeds = _draws(factor_sizes, n, seed)
    images, recons = reconstruct(base, seeds)
    out = {key: np.zeros(len(factor_sizes)) for key in ("input", "kept", "pixels")}
    out["ratio"] = np.full(len(factor_sizes), np.nan)
    for k, size in enumerate(factor_sizes):
        images2, recons2 = reconstruct(_change(base, k, int(size), rng), seeds)
        d_in = np.abs(images2 - images).sum(axis=1)  # [n,H,W], summed over channels
        d_rec = np.abs(recons2 - recons).sum(axis=1)
        where = d_in > threshold
        if where.any():
            out["input"][k], out["kept"][k] = d_in[where].mean(), d_rec[where].mean()
            out["ratio"][k] = out["kept"][k] / out["input"][k]
        out["pixels"][k] = where.sum() / n
    return out
