"""Disentanglement metrics on hand-made codes with known answers.

An axis-aligned code of the factors (each factor in its own dimension, small noise, plus two nearly
constant dimensions) must score near 1; a random rotation of the same code clearly lower; pure
noise near chance. Sizes are far below disentanglement_lib's so the file runs in seconds.
"""

import numpy as np
import pytest

from facelab.metrics import disentanglement
from facelab.metrics.disentanglement import (
    beta_vae_score,
    dci,
    disentanglement_scores,
    factor_sampler,
    factor_vae_score,
    mig,
    sample_dataset,
)

SIZES = [4, 5, 6, 3, 4]
CHANCE = 1 / len(SIZES)


def _encoder(kind: str, seed: int = 7):
    """codes = f(factors) for one of 'aligned', 'rotated', 'noise' (fresh noise on every call)."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(np.random.default_rng(123).standard_normal((len(SIZES) + 2,) * 2))

    def aligned(factors):
        scaled = factors / (np.array(SIZES) - 1)
        return np.hstack([scaled + 0.03 * rng.standard_normal(scaled.shape),
                          0.01 * rng.standard_normal((len(factors), 2))])

    if kind == "aligned":
        return aligned
    if kind == "rotated":
        return lambda factors: aligned(factors) @ rotation
    return lambda factors: rng.standard_normal((len(factors), len(SIZES) + 2))


def _sampler(kind):
    return factor_sampler(SIZES, _encoder(kind))


def _dataset(kind, n=1500):
    return _sampler(kind)(None, n, np.random.default_rng(1))


def test_beta_vae_metric_aligned_rotated_noise():
    scores = {k: beta_vae_score(_sampler(k), batch_size=16, n_train=300, n_eval=200)["eval_accuracy"]
              for k in ("aligned", "rotated", "noise")}
    assert scores["aligned"] >= 0.95
    assert scores["rotated"] <= scores["aligned"] - 0.15
    assert scores["noise"] <= CHANCE + 0.15


def test_beta_vae_recall_names_the_factors_the_code_ignores():
    aligned = _encoder("aligned")
    # factors 2 and 3 not encoded: a lone ignored factor is still named by elimination, two are confused
    blind = factor_sampler(SIZES, lambda f: np.delete(aligned(f), [2, 3], axis=1))
    scores = beta_vae_score(blind, batch_size=16, n_train=300, n_eval=200)
    recalls = [scores[f"recall_{k}"] for k in range(len(SIZES))]
    assert sum(recalls[2:4]) <= 1.25 and min(recalls[:2] + recalls[4:]) >= 0.9  # the two share one class


def test_factor_vae_score_aligned_rotated_noise():
    kw = dict(batch_size=16, n_train=300, n_eval=200, n_variance=2000)
    scores = {k: factor_vae_score(_sampler(k), **kw) for k in ("aligned", "rotated", "noise")}
    assert scores["aligned"]["eval_accuracy"] >= 0.95
    assert scores["aligned"]["active_dims"] == len(SIZES)  # the two near-constant dims are pruned
    assert scores["rotated"]["eval_accuracy"] <= scores["aligned"]["eval_accuracy"] - 0.15
    assert scores["noise"]["eval_accuracy"] <= CHANCE + 0.15


def test_mig_aligned_rotated_noise_and_redundancy():
    scores = {k: mig(*_dataset(k))["mig"] for k in ("aligned", "rotated", "noise")}
    assert scores["aligned"] >= 0.9
    assert scores["rotated"] <= scores["aligned"] - 0.4
    assert scores["noise"] <= 0.05
    # Two codes carrying the same factor leave no gap for it: MIG punishes redundancy.
    factors, codes = _dataset("aligned")
    per = mig(factors, np.hstack([codes, codes[:, :1] + 0.001]))
    assert per["mig_factor_0"] <= 0.1 and per["mig_factor_1"] >= 0.9


@pytest.mark.parametrize("method", ["trees", "lasso"])
def test_dci_aligned_rotated(method):
    aligned = dci(*_dataset("aligned"), method=method)
    rotated = dci(*_dataset("rotated"), method=method)
    assert aligned["disentanglement"] >= 0.9 and aligned["completeness"] >= 0.9
    assert aligned["informativeness"] >= 0.9
    assert rotated["disentanglement"] <= aligned["disentanglement"] - 0.3
    assert rotated["completeness"] <= aligned["completeness"] - 0.3


def test_dci_trees_noise_scores_low():
    noise = dci(*_dataset("noise"))
    assert noise["disentanglement"] <= 0.1 and noise["completeness"] <= 0.1
    assert noise["informativeness"] <= CHANCE + 0.15


def test_dci_gbt_matches_reference_behaviour():
    # Two binary factors keep disentanglement_lib's 100-stage boosting to one tree per stage (fast).
    results = {}
    for kind in ("aligned", "rotated"):
        factors, codes = _dataset(kind, n=240)
        results[kind] = dci((factors[:, :2] >= 2).astype(np.int64), codes, method="gbt")
    assert results["aligned"]["disentanglement"] >= 0.9 and results["aligned"]["informativeness"] >= 0.9
    assert results["rotated"]["disentanglement"] <= results["aligned"]["disentanglement"] - 0.3


def test_sampler_contract_is_checked():
    sample = _sampler("aligned")
    factors, _ = sample({2: np.full(10, 4)}, 10, np.random.default_rng(0))
    assert (factors[:, 2] == 4).all()

    def ignores_fixed(fixed, n, rng):
        return sample(None, n, rng)

    with pytest.raises(ValueError, match="did not hold factor"):
        beta_vae_score(ignores_fixed, batch_size=4, n_train=20, n_eval=10)


def test_sample_fn_calls_stay_small(monkeypatch):
    monkeypatch.setattr(disentanglement, "MAX_CALL_SAMPLES", 64)
    sizes = []
    inner = _sampler("aligned")

    def counting(fixed, n, rng):
        sizes.append(n)
        return inner(fixed, n, rng)

    factors, codes = sample_dataset(counting, 150)
    assert factors.shape == (150, len(SIZES)) and codes.shape == (150, len(SIZES) + 2)
    factor_vae_score(counting, batch_size=16, n_train=20, n_eval=10, n_variance=100)
    beta_vae_score(counting, batch_size=16, n_train=20, n_eval=10)
    assert max(sizes) <= 64 and len(sizes) > 10


def test_disentanglement_scores_flat_dict():
    scores = disentanglement_scores(_sampler("aligned"), batch_size=8, n_train=200, n_eval=100)
    for key in ("beta_vae_eval_accuracy", "factor_vae_eval_accuracy", "mig", "dci_disentanglement",
                "dci_completeness", "dci_informativeness"):
        assert scores[key] >= 0.85, key
    assert all(isinstance(v, float) for v in scores.values())
