"""How much of a latent space the background takes: the quantity seed 002 could only hint at.

Seed 002 saw, in PCA eigenvalues, that the background seemed to occupy a large part of the latent
variance. Here that share is measured against ground truth: the latents are rotated onto their
principal components (facelab.probes.directions.fit_pca, GANSpace's layout), each component's
scores are regressed on the background factors (one-hot), and the R² of each component is weighted
by its explained-variance ratio:

    share = Σ_k var_ratio_k · R²_k

Because the PCA rotation is orthogonal, this equals the fraction of the total latent variance that
the background factors explain; the per-component view says *where* (top components or tail).

Choices, and why:
- latents are not standardised: a VAE's collapsed dimensions carry ~no variance and must not be
  inflated to equal weight;
- the design is one-hot of every combination of the background factors ("joint", the default), so
  any function of the background counts, not just additive effects; "additive" one-hots each factor;
- R² is adjusted for the number of design columns, so latents unrelated to the background score
  ≈ 0 rather than (columns − 1) / N; negative adjusted values (noise) are kept in the per-component
  list and clipped at 0 in the share.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np

from facelab.probes.directions import fit_pca

Design = Literal["joint", "additive"]


def _columns(factors: np.ndarray, factor_names: Sequence[str], wanted: Sequence[str]) -> np.ndarray:
    missing = [w for w in wanted if w not in factor_names]
    if missing:
        raise ValueError(f"background factor(s) {missing} not among the factor names {list(factor_names)}")
    return factors[:, [list(factor_names).index(w) for w in wanted]]


def one_hot_design(codes: np.ndarray, design: Design = "joint") -> np.ndarray:
    """Design matrix [N, p] (intercept first) of one-hot categories of the factor columns in codes [N, F]."""
    codes = np.asarray(codes).reshape(len(codes), -1)
    if design == "joint":
        _, cells = np.unique(codes, axis=0, return_inverse=True)
        groups = [cells.reshape(-1)]
    elif design == "additive":
        groups = [np.unique(col, return_inverse=True)[1] for col in codes.T]
    else:
        raise ValueError(f"design must be 'joint' or 'additive', got {design!r}")
    blocks = [np.ones((len(codes), 1))]
    for g in groups:
        # drop the first level of each group: the intercept already spans it
        blocks.append(np.eye(int(g.max()) + 1)[g][:, 1:])
    return np.concatenate(blocks, axis=1)


def adjusted_r2(y: np.ndarray, design: np.ndarray) -> np.ndarray:
    """Adjusted R² of each column of y [N, k] regressed (least squares) on design [N, p] with intercept."""
    y = np.asarray(y, np.float64)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    centred = y - y.mean(0)
    ss_tot = (centred ** 2).sum(0)
    ss_res = (resid ** 2).sum(0)
    n, p = design.shape[0], np.linalg.matrix_rank(design)
    r2 = 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0)
    if n - p <= 0:
        raise ValueError(f"{n} samples cannot fit {p} design columns; use more latents or design='additive'")
    return 1.0 - (1.0 - r2) * (n - 1) / (n - p)


def background_share(latents: Any, factors: Any, factor_names: Sequence[str],
                     background_factor_names: Sequence[str], design: Design = "joint",
                     n_components: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Share of latent variance explained by the background factors: Σ var_ratio_k · R²_k over PCA components."""
    z = np.asarray(latents, np.float64).reshape(len(latents), -1)
    factors = np.asarray(factors)
    if len(z) != len(factors):
        raise ValueError(f"{len(z)} latents but {len(factors)} factor rows")
    x = one_hot_design(_columns(factors, factor_names, background_factor_names), design)
    if not np.any(z.var(0) > 0):
        raise ValueError("the latents do not vary: no variance to share out")
    basis = fit_pca(z, n_components=n_components, seed=seed)
    scores = basis.project(z)
    r2 = adjusted_r2(scores, x)
    share = float(np.sum(basis.var_ratio * np.clip(r2, 0.0, 1.0)))
    per_factor = {}
    for name in background_factor_names:  # each background factor on its own, for the report
        r2_f = adjusted_r2(scores, one_hot_design(_columns(factors, factor_names, [name]), design))
        per_factor[name] = float(np.sum(basis.var_ratio * np.clip(r2_f, 0.0, 1.0)))
    return {"share": share, "r2": r2.tolist(), "var_ratio": basis.var_ratio.tolist(),
            "per_factor": per_factor, "n": int(len(z)), "design": design,
            "design_columns": int(x.shape[1]), "n_components": int(len(basis.var_ratio))}
