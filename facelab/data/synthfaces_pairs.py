"""Pairs of synthetic faces that share all but a few factors: weak supervision for Ada-GVAE.

Locatello et al. (2020, "Weakly-Supervised Disentanglement Without Compromises") train on pairs of
observations that differ in an unknown subset of the generative factors. SynthFacePairs gives them:
item i is SynthFaces' item i plus a partner face in which k factors were redrawn from the prior
(k uniform in 1..F−1 by default, Locatello's "k = Rnd"; which factors, at random). Both faces share
the nuisance seed (clothes, eye colour, colour jitter, background texture), so the pair differs only
by the redrawn factors. A redrawn factor may land on its old value, so "changed" reports the factors
that actually differ. Every choice is hashed from (seed, i): item i is always the same pair.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from facelab.data.synthfaces import SynthFaces, _unbatch
from facelab.data.synthfaces_factors import FACTOR_NAMES, factors_from_uniforms, hash_uniforms

_PAIR_SALT = np.uint64(0x5EED_FACE_0000_0001)


def partner_factors(factors: np.ndarray, uniforms: np.ndarray, changes: int | None,
                    prior: str = "correlated") -> np.ndarray:
    """Redraw k factors of each row from the prior, the rest kept: uniforms [n, 1 + 2F] drive every choice."""
    n, f = factors.shape
    k = 1 + np.floor(uniforms[:, 0] * (f - 1)).astype(np.int64) if changes is None else np.full(n, changes)
    # the k factors with the smallest keys: a uniformly random subset of size k
    ranks = np.argsort(np.argsort(uniforms[:, 1:1 + f], axis=1), axis=1)
    fresh = factors_from_uniforms(uniforms[:, 1 + f:1 + 2 * f], prior=prior)
    return np.where(ranks < k[:, None], fresh, factors)


class SynthFacePairs(SynthFaces):
    """SynthFaces whose items also carry "image_pair", "mask_pair" and "factors_pair": the same face, k factors
    redrawn.

    changes: how many factors to redraw (1..F−1), or None for a uniformly random number per pair.
    """

    def __init__(self, size: int = 64, length: int = 50_000, seed: int = 0, background: str = "original",
                 changes: int | None = None, prior: str = "correlated"):
        super().__init__(size=size, length=length, seed=seed, background=background, prior=prior)
        n_factors = len(FACTOR_NAMES)
        if changes is not None and (isinstance(changes, bool) or not isinstance(changes, int)
                                    or not 1 <= changes < n_factors):
            raise ValueError(f"changes must be None or an int in [1, {n_factors}), got {changes!r}")
        self.changes = changes

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        """Items with their partners, both rendered in one vectorised batch each."""
        idx = self._indices(indices)
        if len(idx) == 0:
            return []
        keys, factors = self._keyed_factors(idx)
        partner = partner_factors(factors, hash_uniforms(keys ^ _PAIR_SALT, 1 + 2 * len(FACTOR_NAMES)), self.changes,
                                  self.prior)
        second = self._tensors(partner, keys)  # the same keys, so the same nuisance: only factors differ
        batch = {**self._tensors(factors, keys), "image_pair": second["image"], "mask_pair": second["mask"],
                 "factors_pair": second["factors"],
                 "changed": torch.from_numpy(factors != partner)}
        return _unbatch(batch)
