"""The moves of conditional sampling: redraw until accepted, or move one draw across linear boundaries.

`rejection` redraws pending samples until a score clears the margin (seed 000's sampler);
`shift_latents` moves a draw along conditional boundary normals (InterFaceGAN); `nearest_latents`
moves it to the nearest point on the target side of every boundary (Hildreth's projection).
facelab.probes.conditional applies them to flat latents and, level by level, to the HVAE.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from facelab.probes.directions import conditional_direction

SHIFT_MARGIN = 1.0
OVERSHOOT = 1e-3  # aim a hair past the margin: float32 latents must not round back below it


def rejection(n: int, draw: Callable[[np.ndarray], torch.Tensor],
               score: Callable[[np.ndarray, torch.Tensor], np.ndarray], max_attempts: int,
               margin: float) -> tuple[torch.Tensor, np.ndarray, int, int]:
    """Redraw pending samples until score > margin; keep the best draw of those that never make it."""
    best: torch.Tensor | None = None
    best_score = np.full(n, -np.inf)
    pending = np.arange(n)
    drawn = accepted = 0
    for _ in range(int(max_attempts)):
        cand = draw(pending)
        s = score(pending, cand)
        if best is None:
            best = torch.empty((n, *cand.shape[1:]), dtype=cand.dtype, device=cand.device)
        better = s > best_score[pending]
        idx = torch.as_tensor(pending[better], device=cand.device)
        best[idx] = cand[torch.as_tensor(np.flatnonzero(better), device=cand.device)]
        best_score[pending[better]] = s[better]
        ok = s > margin
        drawn, accepted = drawn + len(pending), accepted + int(ok.sum())
        pending = pending[~ok]
        if not len(pending):
            break
    assert best is not None
    return best, best_score > margin, drawn, accepted


def shift_latents(z: np.ndarray, weights: np.ndarray, decisions: np.ndarray, signs: np.ndarray,
                  margin: float = SHIFT_MARGIN) -> np.ndarray:
    """Move rows of z [n, d] so every decision z·w_a + c is on side signs[a] by margin, along conditional directions.

    weights [A, d] are the raw-coordinate SVM weights of the movable block, decisions [n, A] the
    current decisions. Attribute a moves along its weight with the other weights projected off, so
    its step changes no other decision; samples already past the margin do not move for it, and an
    attribute whose weight on this block is zero cannot be moved (the caller sees it unsatisfied).
    """
    z = np.asarray(z, np.float64).copy()
    # a probe with no weight on this block cannot be moved by it: such attributes stay as they are
    movable = [a for a in range(len(signs)) if np.linalg.norm(weights[a]) > 0]
    for a in movable:
        try:
            u = conditional_direction(weights[a], [weights[b] for b in movable if b != a])
        except ValueError as err:
            raise ValueError(f"attribute {a}'s boundary normal lies in the span of the other targets' "
                             "normals: the targets cannot be moved independently") from err
        gain = float(weights[a] @ u)  # > 0: u is w_a minus its projection on the others
        gap = signs[a] * margin * (1 + OVERSHOOT) - decisions[:, a]
        need = signs[a] * decisions[:, a] < margin
        z[need] += (gap[need] / gain)[:, None] * u
    return z


def nearest_latents(z: np.ndarray, weights: np.ndarray, decisions: np.ndarray, signs: np.ndarray,
                    margin: float = SHIFT_MARGIN, sweeps: int = 500, tol: float = 1e-9) -> np.ndarray:
    """Rows of z moved to the nearest point where every decision is on side signs[a] by margin (Hildreth).

    Dual coordinate ascent for min ||δ||² s.t. signs[a]·(decisions[:, a] + weights[a]·δ) ≥ margin:
    δ = Σ_a λ_a g_a with g_a = signs[a]·weights[a], λ ≥ 0, one closed-form update per constraint per
    sweep. It converges to the exact projection when the constraints can be met together.
    """
    z = np.asarray(z, np.float64)
    g = np.asarray(weights, np.float64) * np.asarray(signs, np.float64)[:, None]  # [A, d]
    norms = (g * g).sum(1)
    movable = norms > 0  # a probe with no weight on this block cannot be moved by it
    need = margin * (1 + OVERSHOOT) - np.asarray(signs)[None, :] * np.asarray(decisions)  # [n, A]: g_a·δ ≥ need
    gram = g @ g.T  # g_a·δ = Σ_b λ_b (g_a·g_b)
    lam = np.zeros_like(need)
    for _ in range(int(sweeps)):
        change = 0.0
        for a in np.flatnonzero(movable):
            new = np.maximum(0.0, lam[:, a] + (need[:, a] - lam @ gram[:, a]) / norms[a])
            change = max(change, float(np.abs(new - lam[:, a]).max()) * float(np.sqrt(norms[a])))
            lam[:, a] = new
        if change < tol:
            break
    return z + lam @ g


def mover(method: str) -> Callable[..., np.ndarray]:
    """The latent move of a moving method: nearest_latents or shift_latents (same arguments)."""
    return nearest_latents if method == "nearest" else shift_latents
