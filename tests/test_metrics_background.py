"""Background share of latent variance on constructed latents with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from facelab.data.synthfaces import BACKGROUND_FACTORS, FACTOR_NAMES, sample_factors
from facelab.metrics.background import adjusted_r2, background_share, one_hot_design

N = 2000


@pytest.fixture(scope="module")
def factors() -> np.ndarray:
    return sample_factors(np.random.default_rng(0), N)


def _cell_function(factors: np.ndarray, names: list[str], dims: int, seed: int) -> np.ndarray:
    """[N, dims]: an arbitrary (non-additive) function of the named factors, via a random lookup table."""
    cols = factors[:, [FACTOR_NAMES.index(n) for n in names]]
    _, cell = np.unique(cols, axis=0, return_inverse=True)
    table = np.random.default_rng(seed).standard_normal((int(cell.max()) + 1, dims))
    return table[cell.reshape(-1)]


def test_share_matches_the_background_variance_fraction(factors):
    rng = np.random.default_rng(1)
    bg = 2.0 * _cell_function(factors, BACKGROUND_FACTORS, 2, seed=2)
    rest = rng.standard_normal((N, 6)) * np.array([1.5, 1.0, 1.0, 0.7, 0.5, 0.3])
    # rotate, so the background is spread over every latent dimension (not axis-aligned)
    q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    z = np.concatenate([bg, rest], axis=1) @ q
    expected = bg.var(0).sum() / (bg.var(0).sum() + rest.var(0).sum())
    res = background_share(z, factors, FACTOR_NAMES, BACKGROUND_FACTORS)
    assert 0.4 < expected < 0.8
    assert res["share"] == pytest.approx(expected, abs=0.02)
    assert len(res["r2"]) == len(res["var_ratio"]) == 8
    assert sum(res["var_ratio"]) == pytest.approx(1.0)
    # the background lives in the top components here: their R² is near 1
    assert max(res["r2"][:2]) > 0.9


def test_latents_independent_of_background_score_near_zero(factors):
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((N, 8))
    face = _cell_function(factors, ["sex", "age", "hair_colour"], 4, seed=4)
    for z in (noise, np.concatenate([face, 0.3 * noise[:, :4]], axis=1)):
        res = background_share(z, factors, FACTOR_NAMES, BACKGROUND_FACTORS)
        assert res["share"] < 0.02


def test_per_factor_share_names_the_factor_that_explains_it(factors):
    rng = np.random.default_rng(5)
    colour = _cell_function(factors, ["bg_colour"], 3, seed=6)
    z = np.concatenate([colour, 0.5 * rng.standard_normal((N, 3))], axis=1)
    res = background_share(z, factors, FACTOR_NAMES, BACKGROUND_FACTORS, design="additive")
    assert res["per_factor"]["bg_colour"] == pytest.approx(res["share"], abs=0.02)
    assert res["per_factor"]["bg_kind"] < 0.02
    assert res["share"] > 0.6


def test_adjusted_r2_removes_the_chance_fit_of_many_columns():
    rng = np.random.default_rng(7)
    cells = rng.integers(0, 40, 200)
    x = one_hot_design(cells[:, None])
    y = rng.standard_normal((200, 50))
    assert x.shape == (200, 40)
    assert abs(float(adjusted_r2(y, x).mean())) < 0.03  # unadjusted R² would be ≈ 39/200 ≈ 0.2


def test_unknown_background_factor_is_refused(factors):
    with pytest.raises(ValueError, match="not among the factor names"):
        background_share(np.ones((N, 2)), factors, FACTOR_NAMES, ["wallpaper"])
    with pytest.raises(ValueError, match="do not vary"):
        background_share(np.ones((N, 2)), factors, FACTOR_NAMES, BACKGROUND_FACTORS)
