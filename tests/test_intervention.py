"""Intervention effects on hand-made codes with known answers, and on a real model through the renderer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facelab.data.synthfaces_factors import FACTOR_NAMES, FACTOR_SIZES
from facelab.metrics.evaluate import synthfaces_encoder
from facelab.metrics.intervention import effect_summary, intervention_effects
from facelab.models.vae import VAE

SIZES = [2, 3, 5, 4]


def axis_code(factors: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Dims 0-3: the factors; dim 4: a nuisance from the seed; dim 5: constant (collapsed)."""
    nuisance = (seeds % np.uint64(1000)).astype(np.float64) / 1000.0
    return np.column_stack([factors.astype(np.float64), nuisance, np.zeros(len(factors))])


def test_an_axis_aligned_code_moves_exactly_its_own_dimension():
    out = intervention_effects(axis_code, SIZES, n=500, seed=1)
    effects = out["effects"]
    assert out["active"].tolist() == [True] * 5 + [False]
    # every change of factor k moves dim k (by ≥ 1 level over its std) and nothing else
    assert (np.diag(effects[:, :4]) > 0.5).all()
    off = effects[:, :4] - np.diag(np.diag(effects[:, :4]))
    assert np.abs(off).max() == 0.0
    # the nuisance dim never moves: both faces of an intervention share the seed
    assert np.abs(effects[:, 4]).max() == 0.0 and np.abs(effects[:, 5]).max() == 0.0
    rows = effect_summary(effects, ["a", "b", "c", "d"])
    assert [r["top_dim"] for r in rows] == [0, 1, 2, 3] and all(r["dims_over"] == 1 for r in rows)


def test_a_mixed_code_spreads_each_factor_over_dimensions():
    rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))[0]
    out = intervention_effects(lambda f, s: f.astype(np.float64) @ rotation, SIZES, n=500)
    assert (out["effects"] > 0.05).sum(axis=1).min() >= 2  # no factor has a dimension of its own


def test_a_real_model_through_the_renderer_and_bad_n():
    torch.manual_seed(0)
    model = VAE(image_size=16, latent_dim=8).eval()
    encode = synthfaces_encoder(model, 16)
    out = intervention_effects(encode, FACTOR_SIZES, n=64, min_std=1e-6)  # untrained: small but live codes
    assert out["effects"].shape == (len(FACTOR_NAMES), 8) and np.isfinite(out["effects"]).all()
    # an untrained encoder still sees pixels: big factors (background colour) move codes more than lipstick
    bg, lipstick = FACTOR_NAMES.index("bg_colour"), FACTOR_NAMES.index("lipstick")
    assert out["effects"][bg].sum() > out["effects"][lipstick].sum()
    # same factors and seeds give the same codes (the encoder honours the seeds it is given)
    f = np.zeros((4, len(FACTOR_NAMES)), np.int64)
    seeds = np.arange(4, dtype=np.uint64)
    np.testing.assert_array_equal(encode(f, seeds), encode(f, seeds))
    with pytest.raises(ValueError, match="n must be >= 2"):
        intervention_effects(encode, FACTOR_SIZES, n=1)
