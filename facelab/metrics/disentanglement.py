"""Disentanglement scores of codes against ground-truth factors: β-VAE metric, FactorVAE, MIG, DCI.

Settings follow disentanglement_lib (Locatello et al. 2019): batches of 64, 10,000 training and 5,000
evaluation points for the β-VAE and FactorVAE scores, 20 histogram bins for MIG, 10,000 / 5,000
samples for DCI — all parameters, so tests and quick looks can use fewer.

What follows disentanglement_lib (google-research/disentanglement_lib, evaluation/metrics/*.py), and how
it was checked (tests/test_disentanglement.py re-implements each published formula on toy codes with
known answers: identity, scaled identity, random rotation, mixed factors, noise):

- FactorVAE (factor_vae.py): dimensions are pruned as `_prune_dims` does, keeping those whose standard
  deviation is ≥ `prune` (0.05, the threshold of its configs) — a test checks that a code of the
  factors scaled by 0.1 keeps every dimension and scores 1, as the reference does.
- DCI (dci.py, `compute_importance_gbt`): the default "gbt" fits sklearn's GradientBoostingClassifier
  (100 stages) per factor, importance = |feature_importances_|, informativeness = held-out accuracy;
  a test checks D, C and I against a re-implementation of the reference on rotated and mixed codes.
  "trees" (30 depth-8 extremely randomised trees, several times faster) is kept for quick looks
  only: it ranks codes the same way (axis-aligned ≈ 1, rotated lower, noise ≈ 0) but does not give
  the reference's numbers (on rotated codes D, C and I differ from GBT's by 0.03–0.09, either way).
  "lasso" (Eastwood & Williams' linear variant) reports held-out R² as informativeness; its D and C
  are scale-free and so meaningless when informativeness is near 0 (a lone surviving noise
  coefficient scores D = 1).

The β-VAE and FactorVAE scores need batches in which one factor is held fixed. They get them from a
`sample_fn(fixed, n, rng) -> (factors [n, F] int, codes [n, D])` callback: `fixed` maps a factor
index to the values it must take (an int array of length n, one value per sample) or is None, and
every other factor is drawn from the data distribution. A caller that can render faces from factors
passes a function that draws factors, overwrites the fixed ones, renders and encodes;
`factor_sampler(factor_sizes, encode)` builds exactly that from an `encode(factors) -> codes`.
Each call asks for at most MAX_CALL_SAMPLES samples (whole batches), so memory stays bounded.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import numpy as np
from scipy.stats import entropy
from sklearn.ensemble import ExtraTreesClassifier, GradientBoostingClassifier
from sklearn.linear_model import Lasso, LogisticRegression
from sklearn.metrics import mutual_info_score
from sklearn.preprocessing import StandardScaler

MAX_CALL_SAMPLES = 8192  # at most this many samples per sample_fn call (whole batches), to bound memory
SampleFn = Callable[[dict[int, np.ndarray] | None, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def factor_sampler(factor_sizes: Sequence[int], encode: Callable[[np.ndarray], np.ndarray]) -> SampleFn:
    """A SampleFn for independent uniform factors: draw them, overwrite the fixed ones, encode."""
    sizes = [int(s) for s in factor_sizes]

    def sample(fixed: dict[int, np.ndarray] | None, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        factors = np.stack([rng.integers(0, s, n) for s in sizes], axis=1)
        for k, values in (fixed or {}).items():
            factors[:, k] = values
        return factors, np.asarray(encode(factors), dtype=np.float64).reshape(n, -1)

    return sample


def _draw(sample_fn: SampleFn, fixed: dict[int, np.ndarray] | None, n: int,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Call sample_fn and check what it returned."""
    factors, codes = sample_fn(fixed, n, rng)
    factors, codes = np.asarray(factors), np.asarray(codes, dtype=np.float64).reshape(n, -1)
    if factors.shape[0] != n:
        raise ValueError(f"sample_fn returned {factors.shape[0]} factor rows for n={n}")
    for k, values in (fixed or {}).items():
        if not np.array_equal(factors[:, k], np.broadcast_to(values, (n,))):
            raise ValueError(f"sample_fn did not hold factor {k} at the requested values")
    return factors, codes


def sample_dataset(sample_fn: SampleFn, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n (factors, codes) pairs from the data distribution, in calls of at most MAX_CALL_SAMPLES (for MIG, DCI)."""
    return _draw_many(sample_fn, n, np.random.default_rng(seed))


def _draw_many(sample_fn: SampleFn, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    parts = [_draw(sample_fn, None, min(MAX_CALL_SAMPLES, n - i), rng) for i in range(0, n, MAX_CALL_SAMPLES)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


# ---------------------------------------------------------------- β-VAE metric (Higgins et al. 2017)


def _chunks(labels: np.ndarray, batch_size: int) -> Iterator[tuple[np.ndarray, int]]:
    """(rows, factor) groups of batches, each small enough for one sample_fn call."""
    step = max(1, MAX_CALL_SAMPLES // batch_size)
    for start in range(0, len(labels), step):
        part = labels[start:start + step]
        for k in np.unique(part):
            yield start + np.flatnonzero(part == k), int(k)


def _beta_vae_points(sample_fn: SampleFn, n_points: int, batch_size: int, n_factors: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points = mean |z1 − z2| over a batch of pairs sharing one factor; labels = that factor."""
    labels = rng.integers(0, n_factors, n_points)
    feats: np.ndarray | None = None
    for rows, k in _chunks(labels, batch_size):
        m = len(rows) * batch_size
        f1, z1 = _draw(sample_fn, None, m, rng)
        _, z2 = _draw(sample_fn, {k: f1[:, k]}, m, rng)
        diff = np.abs(z1 - z2).reshape(len(rows), batch_size, -1).mean(1)
        feats = np.empty((n_points, diff.shape[1])) if feats is None else feats
        feats[rows] = diff
    return feats, labels


def beta_vae_score(sample_fn: SampleFn, batch_size: int = 64, n_train: int = 10_000, n_eval: int = 5_000,
                   seed: int = 0) -> dict[str, float]:
    """Higgins et al.'s metric: accuracy of a linear classifier naming the fixed factor from mean |z1 − z2|."""
    rng = np.random.default_rng(seed)
    n_factors = _draw(sample_fn, None, 2, rng)[0].shape[1]
    x_train, y_train = _beta_vae_points(sample_fn, n_train, batch_size, n_factors, rng)
    x_eval, y_eval = _beta_vae_points(sample_fn, n_eval, batch_size, n_factors, rng)
    # disentanglement_lib's classifier: default logistic regression on the raw features.
    model = LogisticRegression(max_iter=1000, random_state=seed).fit(x_train, y_train)
    predicted = model.predict(x_eval)
    # per-factor recall says which factors the code fails to single out (absent: factor never drawn)
    recall = {f"recall_{k}": float(np.mean(predicted[y_eval == k] == k)) for k in range(n_factors)
              if np.any(y_eval == k)}
    return {"train_accuracy": float(model.score(x_train, y_train)),
            "eval_accuracy": float(np.mean(predicted == y_eval)), **recall}


# ---------------------------------------------------------------- FactorVAE score (Kim & Mnih 2018)


def _factor_vae_votes(sample_fn: SampleFn, n_points: int, batch_size: int, pool: np.ndarray,
                      global_var: np.ndarray, active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """votes[k, j]: batches with factor k fixed whose least-varying (normalised) active code was j."""
    votes = np.zeros((pool.shape[1], int(active.sum())), np.int64)
    for rows, k in _chunks(rng.integers(0, pool.shape[1], n_points), batch_size):
        # Each batch's fixed value is a factor value drawn from the data (a row of the variance pool).
        values = np.repeat(pool[rng.integers(0, len(pool), len(rows)), k], batch_size)
        _, codes = _draw(sample_fn, {k: values}, len(values), rng)
        local = codes.reshape(len(rows), batch_size, -1).var(axis=1, ddof=1)[:, active]
        np.add.at(votes[k], (local / global_var[active]).argmin(axis=1), 1)
    return votes


def factor_vae_score(sample_fn: SampleFn, batch_size: int = 64, n_train: int = 10_000, n_eval: int = 5_000,
                     n_variance: int = 10_000, prune: float = 0.05, seed: int = 0) -> dict[str, float]:
    """Kim & Mnih's score: majority vote from the least-varying normalised code (std ≥ prune) to the fixed factor."""
    rng = np.random.default_rng(seed)
    pool, codes = _draw_many(sample_fn, n_variance, rng)
    global_var = codes.var(axis=0, ddof=1)
    # disentanglement_lib's _prune_dims: keep dims whose standard deviation (not variance) is ≥ prune;
    # collapsed codes would otherwise win every argmin
    active = np.sqrt(global_var) >= prune
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "active_dims": 0.0}
    train = _factor_vae_votes(sample_fn, n_train, batch_size, pool, global_var, active, rng)
    classifier = train.argmax(axis=0)
    cols = np.arange(train.shape[1])
    evals = _factor_vae_votes(sample_fn, n_eval, batch_size, pool, global_var, active, rng)
    return {"train_accuracy": float(train[classifier, cols].sum() / max(train.sum(), 1)),
            "eval_accuracy": float(evals[classifier, cols].sum() / max(evals.sum(), 1)),
            "active_dims": float(active.sum())}


# ---------------------------------------------------------------- MIG (Chen et al. 2018)


def _discretise(codes: np.ndarray, n_bins: int) -> np.ndarray:
    """Per code dimension, the index of its value among n_bins equal-width histogram bins."""
    return np.stack([np.digitize(c, np.histogram(c, n_bins)[1][:-1]) for c in codes.T], axis=1)


def mutual_information_matrix(factors: np.ndarray, codes: np.ndarray, n_bins: int = 20) -> np.ndarray:
    """mi[j, k]: mutual information (nats) between binned code j and factor k."""
    binned = _discretise(np.asarray(codes, np.float64).reshape(len(codes), -1), n_bins)
    factors = np.asarray(factors)
    return np.array([[mutual_info_score(factors[:, k], binned[:, j]) for k in range(factors.shape[1])]
                     for j in range(binned.shape[1])])


def mig(factors: np.ndarray, codes: np.ndarray, n_bins: int = 20) -> dict[str, float]:
    """Mutual information gap: per factor, (top − second-top code MI) / factor entropy, averaged."""
    factors = np.asarray(factors)
    mi = mutual_information_matrix(factors, codes, n_bins)
    h = np.array([mutual_info_score(f, f) for f in factors.T])
    top = np.sort(mi, axis=0)[::-1]
    second = top[1] if len(top) > 1 else np.zeros_like(top[0])
    gaps = np.where(h > 0, (top[0] - second) / np.where(h > 0, h, 1.0), np.nan)  # constant factors: undefined
    return {"mig": float(np.nanmean(gaps)), **{f"mig_factor_{k}": float(g) for k, g in enumerate(gaps)}}


# ---------------------------------------------------------------- DCI (Eastwood & Williams 2018)


def _importance_lasso(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray,
                      alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """|Lasso coefficients| of standardised codes → each standardised factor, and held-out R²."""
    sx, sy = StandardScaler().fit(x_tr), StandardScaler().fit(y_tr.astype(np.float64))
    xa, xb = sx.transform(x_tr), sx.transform(x_te)
    ya, yb = sy.transform(y_tr.astype(np.float64)), sy.transform(y_te.astype(np.float64))
    imp, info = np.zeros((x_tr.shape[1], y_tr.shape[1])), np.zeros(y_tr.shape[1])
    for k in range(y_tr.shape[1]):
        model = Lasso(alpha=alpha).fit(xa, ya[:, k])
        imp[:, k] = np.abs(model.coef_)
        info[k] = max(model.score(xb, yb[:, k]), 0.0)
    return imp, info


def _tree_model(method: str, seed: int) -> Any:
    if method == "gbt":  # disentanglement_lib's choice (dci.py): default 100-stage boosting per factor
        return GradientBoostingClassifier(random_state=seed)
    # Extremely randomised trees over all features: same ranking of codes as GBT at a fraction of
    # the time, but not the reference's numbers (see the module docstring) — quick looks only.
    return ExtraTreesClassifier(n_estimators=30, max_depth=8, max_features=None, random_state=seed)


def _importance_trees(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray, method: str,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Tree-ensemble feature importances per factor, and held-out accuracy (disentanglement_lib's recipe)."""
    imp, info = np.zeros((x_tr.shape[1], y_tr.shape[1])), np.zeros(y_tr.shape[1])
    for k in range(y_tr.shape[1]):
        model = _tree_model(method, seed).fit(x_tr, y_tr[:, k])
        imp[:, k] = np.abs(model.feature_importances_)
        info[k] = model.score(x_te, y_te[:, k])
    return imp, info


def _weighted_specificity(imp: np.ndarray) -> float:
    """Σ_rows (1 − entropy of the row's distribution over columns, base = #columns) · row's share."""
    total = imp.sum()
    if total <= 0 or imp.shape[1] < 2:
        return 0.0 if total <= 0 else 1.0
    spec = 1.0 - entropy(imp.T + 1e-11, base=imp.shape[1])
    return float(np.sum(spec * imp.sum(axis=1) / total))


def dci(factors: np.ndarray, codes: np.ndarray, method: str = "gbt", test_fraction: float = 1 / 3,
        alpha: float = 0.01, seed: int = 0) -> dict[str, float]:
    """Disentanglement, completeness, informativeness from an importance matrix (codes × factors); gbt = reference."""
    factors = np.asarray(factors)
    codes = np.asarray(codes, np.float64).reshape(len(codes), -1)
    n_test = int(round(len(codes) * test_fraction))
    perm = np.random.default_rng(seed).permutation(len(codes))
    te, tr = perm[:n_test], perm[n_test:]
    if method == "lasso":
        imp, info = _importance_lasso(codes[tr], factors[tr], codes[te], factors[te], alpha)
    elif method in ("trees", "gbt"):
        imp, info = _importance_trees(codes[tr], factors[tr], codes[te], factors[te], method, seed)
    else:
        raise ValueError(f"method must be 'gbt', 'trees' or 'lasso', got {method!r}")
    return {"disentanglement": _weighted_specificity(imp), "completeness": _weighted_specificity(imp.T),
            "informativeness": float(info.mean())}


def disentanglement_scores(sample_fn: SampleFn, batch_size: int = 64, n_train: int = 10_000,
                           n_eval: int = 5_000, dci_method: str = "gbt", seed: int = 0) -> dict[str, float]:
    """All four scores in disentanglement_lib's settings, as one flat dict (for metrics.json)."""
    factors, codes = sample_dataset(sample_fn, n_train + n_eval, seed + 1)
    out = {f"beta_vae_{k}": v for k, v in beta_vae_score(sample_fn, batch_size, n_train, n_eval, seed).items()}
    out.update({f"factor_vae_{k}": v for k, v in factor_vae_score(
        sample_fn, batch_size, n_train, n_eval, n_train, seed=seed).items()})
    out.update(mig(factors[:n_train], codes[:n_train]))
    out.update({f"dci_{k}": v for k, v in dci(factors, codes, dci_method, n_eval / (n_train + n_eval),
                                               seed=seed).items()})
    return out
