"""Intervention effects on hand-made codes with known answers, and on a real model through the renderer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facelab.data.synthfaces_factors import FACTOR_NAMES, FACTOR_SIZES
from facelab.metrics.evaluate import synthfaces_encoder, synthfaces_reconstructor
from facelab.metrics.intervention import effect_summary, intervention_effects, reconstruction_response
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


def factor_images(factors: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Images [n,3,4,4] where factor k paints pixel k (value / size), and a seed-driven pixel 15."""
    img = np.zeros((len(factors), 3, 4, 4))
    for k, size in enumerate(SIZES):
        img[:, :, k // 4, k % 4] = (factors[:, k] / size)[:, None]
    img[:, :, 3, 3] = (seeds % np.uint64(7)).astype(np.float64)[:, None] / 7
    return img


def test_reconstruction_response_tells_drawn_factors_from_dropped_ones():
    def partial_decoder(factors, seeds):
        x = factor_images(factors, seeds)
        y = x.copy()
        y[:, :, 0, 3] = 0.0  # this "decoder" never draws factor 3
        y[:, :, 0, 1] *= 0.5  # and draws factor 1 at half strength
        return x, y
    out = reconstruction_response(partial_decoder, SIZES, n=200, seed=2)
    np.testing.assert_allclose(out["ratio"], [1.0, 0.5, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(out["pixels"], [1.0, 1.0, 1.0, 1.0])  # one pixel per factor, every face
    assert (out["input"] > 0).all()
    # a factor that changes no pixel has nothing to draw: NaN, not "dropped"
    blind = reconstruction_response(partial_decoder, [*SIZES, 2], n=20)  # factor_images paints SIZES' four only
    assert np.isnan(blind["ratio"][4]) and blind["pixels"][4] == 0 and blind["ratio"][0] == 1.0
    with pytest.raises(ValueError, match="n must be >= 1"):
        reconstruction_response(partial_decoder, SIZES, n=0)


def test_reconstruction_response_of_a_real_model_through_the_renderer():
    torch.manual_seed(0)
    model = VAE(image_size=16, latent_dim=8).eval()
    reconstruct = synthfaces_reconstructor(model, 16)
    f = np.zeros((3, len(FACTOR_NAMES)), np.int64)
    images, recons = reconstruct(f, np.arange(3, dtype=np.uint64))
    assert images.shape == recons.shape == (3, 3, 16, 16) and images.min() >= -1 and images.max() <= 1
    out = reconstruction_response(reconstruct, FACTOR_SIZES, n=16)
    # background colour changes most pixels, lipstick a few lip pixels; an untrained decoder keeps little
    bg, lipstick = FACTOR_NAMES.index("bg_colour"), FACTOR_NAMES.index("lipstick")
    assert out["pixels"][bg] > 5 * out["pixels"][lipstick] > 0
    assert np.isfinite(out["ratio"]).all() and (out["ratio"] < 1).all()
