"""Generative factors of synthfaces: names, sizes, the correlated prior and CelebA-named attributes."""

from __future__ import annotations

from typing import Callable

import numpy as np

FACTOR_VALUE_NAMES: dict[str, list[str]] = {
    "sex": ["female", "male"],
    "age": ["young", "middle-aged", "old"],
    "skin_tone": ["pale", "light", "medium", "tan", "dark"],
    "face_width": ["narrow", "slim", "broad", "wide"],
    "yaw": ["far left", "left", "frontal", "right", "far right"],
    "roll": ["tilt left", "slight left", "upright", "slight right", "tilt right"],
    "hair_colour": ["black", "brown", "blond", "red", "grey"],
    "hair_style": ["short", "long", "bangs", "bald"],
    "eyeglasses": ["none", "clear", "sunglasses"],
    "smile": ["frown", "neutral", "slight smile", "smile", "grin"],
    "beard": ["none", "moustache", "beard", "beard and moustache"],
    "lipstick": ["none", "lipstick"],
    "lighting": ["left", "upper left", "front", "upper right", "right"],
    "bg_kind": ["flat", "gradient", "stripes", "blobs", "noise"],
    "bg_colour": ["steel blue", "teal", "olive", "mustard", "brick", "purple", "pink", "light grey"],
}
FACTOR_NAMES: list[str] = list(FACTOR_VALUE_NAMES)
FACTOR_SIZES: list[int] = [len(v) for v in FACTOR_VALUE_NAMES.values()]
FACTOR_INDEX: dict[str, int] = {name: k for k, name in enumerate(FACTOR_NAMES)}
BACKGROUND_FACTORS: list[str] = ["bg_kind", "bg_colour"]
# "correlated": the CelebA-like prior below; "uniform": every factor independent and uniform, the
# setting of disentanglement benchmarks (dSprites, 3dshapes) and of the metrics' own sampling.
FACTOR_PRIORS: tuple[str, ...] = ("correlated", "uniform")

# CelebA's own names, in CelebA's column order; each is a pure function of the factors.
ATTRIBUTE_NAMES: list[str] = [
    "Bags_Under_Eyes", "Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Eyeglasses",
    "Gray_Hair", "Male", "Mustache", "No_Beard", "Pale_Skin", "Smiling", "Wearing_Lipstick", "Young",
]

_ProbFn = Callable[[dict[str, np.ndarray]], np.ndarray]


def _rows(table: dict[int, list[float]], key: np.ndarray) -> np.ndarray:
    """Look up one probability row per sample from a small table keyed by an int code."""
    keys = sorted(table)
    arr = np.asarray([table[k] for k in keys], dtype=np.float64)
    return arr[np.searchsorted(keys, key)]


def _const(probs: list[float]) -> _ProbFn:
    return lambda f: np.asarray(probs, dtype=np.float64)[None]


def _hair_colour(f: dict[str, np.ndarray]) -> np.ndarray:
    # Age greys hair; women are more often blond (as in CelebA).
    p = _rows({0: [0.30, 0.36, 0.24, 0.08, 0.02], 1: [0.30, 0.34, 0.12, 0.06, 0.18],
               2: [0.12, 0.10, 0.04, 0.02, 0.72]}, f["age"]).copy()
    p[:, 2] *= np.where(f["sex"] == 0, 1.5, 0.6)
    return p / p.sum(1, keepdims=True)


def _hair_style(f: dict[str, np.ndarray]) -> np.ndarray:
    # Men wear short hair and go bald with age; women wear long hair or bangs.
    return _rows({0: [0.14, 0.58, 0.28, 0.0], 1: [0.14, 0.58, 0.28, 0.0], 2: [0.14, 0.58, 0.28, 0.0],
                  10: [0.72, 0.08, 0.14, 0.06], 11: [0.62, 0.05, 0.08, 0.25],
                  12: [0.50, 0.03, 0.04, 0.43]}, 10 * f["sex"] + f["age"])


# Ancestral order: each factor's distribution depends only on factors before it.
_PRIOR: dict[str, _ProbFn] = {
    "sex": _const([0.58, 0.42]),
    "age": lambda f: _rows({0: [0.74, 0.17, 0.09], 1: [0.58, 0.24, 0.18]}, f["sex"]),
    "skin_tone": _const([0.14, 0.34, 0.24, 0.16, 0.12]),
    "face_width": lambda f: _rows({0: [0.30, 0.35, 0.25, 0.10], 1: [0.10, 0.25, 0.35, 0.30]}, f["sex"]),
    "yaw": _const([0.14, 0.20, 0.32, 0.20, 0.14]),
    "roll": _const([0.12, 0.20, 0.36, 0.20, 0.12]),
    "hair_colour": _hair_colour,
    "hair_style": _hair_style,
    "eyeglasses": lambda f: _rows({0: [0.82, 0.08, 0.10], 1: [0.65, 0.25, 0.10],
                                   2: [0.50, 0.42, 0.08]}, f["age"]),
    "smile": lambda f: _rows({0: [0.06, 0.26, 0.18, 0.30, 0.20],
                              1: [0.10, 0.34, 0.18, 0.24, 0.14]}, f["sex"]),
    "beard": lambda f: _rows({0: [1.0, 0.0, 0.0, 0.0], 10: [0.55, 0.12, 0.13, 0.20],
                              11: [0.40, 0.18, 0.14, 0.28], 12: [0.40, 0.18, 0.14, 0.28]},
                             np.where(f["sex"] == 0, 0, 10 + f["age"])),
    "lipstick": lambda f: _rows({0: [0.30, 0.70], 1: [1.0, 0.0]}, f["sex"]),
    "lighting": _const([0.2] * 5),
    "bg_kind": _const([0.2] * 5),
    "bg_colour": _const([0.125] * 8),
}
assert list(_PRIOR) == FACTOR_NAMES


def check_fixed(fixed: dict[str, int] | None) -> dict[str, int]:
    """Validate {factor name: value}; raise ValueError naming an unknown factor or bad value."""
    out: dict[str, int] = {}
    for name, value in (fixed or {}).items():
        if name not in FACTOR_INDEX:
            raise ValueError(f"unknown factor {name!r}; factors are {', '.join(FACTOR_NAMES)}")
        size = FACTOR_SIZES[FACTOR_INDEX[name]]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < size:
            raise ValueError(f"factor {name!r} takes an int in [0, {size}), got {value!r}")
        out[name] = int(value)
    return out


def check_factors(factors: np.ndarray) -> np.ndarray:
    """Return factors as int64 [n,F]; raise ValueError naming the first factor out of range."""
    arr = np.asarray(factors)
    if arr.ndim != 2 or arr.shape[1] != len(FACTOR_NAMES):
        raise ValueError(f"factors must be [n, {len(FACTOR_NAMES)}] ({', '.join(FACTOR_NAMES)}), "
                         f"got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"factors must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    for k, (name, size) in enumerate(zip(FACTOR_NAMES, FACTOR_SIZES)):
        bad = (arr[:, k] < 0) | (arr[:, k] >= size)
        if bad.any():
            raise ValueError(f"factor {name!r} takes values in [0, {size}), got {int(arr[bad, k][0])}")
    return arr


def check_prior(prior: str) -> str:
    """Return prior if it names a factor prior; raise ValueError listing them otherwise."""
    if prior not in FACTOR_PRIORS:
        raise ValueError(f"unknown factor prior {prior!r}; choose one of {', '.join(FACTOR_PRIORS)}")
    return prior


def factors_from_uniforms(uniforms: np.ndarray, fixed: dict[str, int] | None = None,
                          prior: str = "correlated") -> np.ndarray:
    """Map uniforms [n,F] in [0,1) to factors [n,F] by inverse CDF through the prior.

    Fixed factors are interventions: they take the given value and their descendants are drawn
    conditioned on it, while their ancestors keep their own prior (do() semantics).
    """
    fixed, prior = check_fixed(fixed), check_prior(prior)
    n = uniforms.shape[0]
    values: dict[str, np.ndarray] = {}
    for k, (name, prob_fn) in enumerate(_PRIOR.items()):
        if name in fixed:
            values[name] = np.full(n, fixed[name], dtype=np.int64)
            continue
        if prior == "uniform":
            values[name] = np.minimum(uniforms[:, k] * FACTOR_SIZES[k], FACTOR_SIZES[k] - 1).astype(np.int64)
            continue
        cdf = np.cumsum(np.broadcast_to(prob_fn(values), (n, FACTOR_SIZES[k])), axis=1)
        # Scale by the row total so rounding never leaves a uniform beyond the last bin.
        drawn = (uniforms[:, k, None] * cdf[:, -1:] >= cdf).sum(1)
        values[name] = np.minimum(drawn, FACTOR_SIZES[k] - 1).astype(np.int64)
    return np.stack([values[name] for name in FACTOR_NAMES], axis=1)


def sample_factors(rng: np.random.Generator, n: int, fixed: dict[str, int] | None = None,
                   prior: str = "correlated") -> np.ndarray:
    """Draw n factor rows [n,F] int64 from the (by default correlated) prior, holding the fixed factors.

    Fixing is an intervention: factors drawn after a fixed one (in FACTOR_NAMES order) are
    conditioned on it, factors before it keep their prior (e.g. fixed beard leaves sex alone).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return factors_from_uniforms(rng.random((n, len(FACTOR_NAMES))), fixed, prior)


def sample_attributes(rng: np.random.Generator, n: int, targets: dict[str, int] | None = None,
                      prior: str = "correlated", max_draws: int = 200_000) -> np.ndarray:
    """n attribute rows [n,A] from the factor prior conditioned on targets (name -> 0/1), by rejection.

    Conditioning keeps the other attributes consistent with the targets (Male = 1 draws faces
    without lipstick as often as the data does); a CVAE told an impossible combination draws
    something it never saw. A combination rarer than n / max_draws raises ValueError.
    """
    unknown = sorted(set(targets or {}) - set(ATTRIBUTE_NAMES))
    if unknown:
        raise ValueError(f"unknown attributes {unknown}; known: {', '.join(ATTRIBUTE_NAMES)}")
    cols = [(ATTRIBUTE_NAMES.index(a), float(v)) for a, v in (targets or {}).items()]
    kept, drawn = [], 0
    while sum(len(k) for k in kept) < n and drawn < max_draws:
        batch = max(256, 4 * n)
        attrs = attributes_from_factors(sample_factors(rng, batch, prior=prior))
        drawn += batch
        ok = np.ones(batch, bool)
        for i, v in cols:
            ok &= attrs[:, i] == v
        kept.append(attrs[ok])
    rows = np.concatenate(kept)[:n] if kept else np.zeros((0, len(ATTRIBUTE_NAMES)), np.float32)
    if len(rows) < n:
        raise ValueError(f"the attribute combination {targets} is too rare in the synthfaces prior "
                         f"({len(rows)} of {drawn} draws)")
    return rows


def attributes_from_factors(factors: np.ndarray) -> np.ndarray:
    """CelebA-named binary attributes [n,A] float32 in {0,1}, in ATTRIBUTE_NAMES order."""
    f = {name: col for name, col in zip(FACTOR_NAMES, check_factors(factors).T)}
    hair, style, beard = f["hair_colour"], f["hair_style"], f["beard"]
    attrs = {
        "Bags_Under_Eyes": f["age"] == 2,
        "Bald": style == 3,
        "Bangs": style == 2,
        "Black_Hair": hair == 0,
        "Blond_Hair": hair == 2,
        "Brown_Hair": hair == 1,
        "Eyeglasses": f["eyeglasses"] > 0,
        "Gray_Hair": hair == 4,
        "Male": f["sex"] == 1,
        "Mustache": (beard == 1) | (beard == 3),
        "No_Beard": beard < 2,
        "Pale_Skin": f["skin_tone"] == 0,
        "Smiling": f["smile"] >= 3,
        "Wearing_Lipstick": f["lipstick"] == 1,
        "Young": f["age"] == 0,
    }
    return np.stack([attrs[name] for name in ATTRIBUTE_NAMES], axis=1).astype(np.float32)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a bijective uint64 mix, so nearby counters give unrelated bits."""
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hash_keys(seed: int, index: np.ndarray) -> np.ndarray:
    """uint64 key per (seed, index): counter-based, so any index is reachable without state."""
    s = _splitmix(np.full(1, int(seed) & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64))
    idx = np.atleast_1d(np.asarray(index, dtype=np.int64)).astype(np.uint64)
    return _splitmix(s ^ (idx * np.uint64(0xD1B54A32D192ED03)))


def hash_uniforms(keys: np.ndarray, count: int) -> np.ndarray:
    """count float64 uniforms in [0,1) per key: [*keys.shape, count]."""
    slots = np.arange(count, dtype=np.uint64) * _GOLDEN
    bits = _splitmix(np.asarray(keys, dtype=np.uint64)[..., None] ^ slots)
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
