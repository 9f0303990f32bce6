"""Balanced train/valid/test splits that keep attribute prevalence equal across splits (seed 001)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

SPLIT_NAMES = ("train", "valid", "test")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


def _split_names(n: int) -> list[str]:
    if n == 3:
        return list(SPLIT_NAMES)
    if n == 2:
        return ["train", "test"]
    return [f"split{k}" for k in range(n)]


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    frac = np.asarray(fractions, dtype=np.float64)
    if frac.ndim != 1 or len(frac) < 1 or (frac <= 0).any() or abs(frac.sum() - 1.0) > 1e-6:
        raise ValueError(f"fractions must be positive and sum to 1, got {tuple(fractions)}")
    return frac


def _default_stratify(attributes: np.ndarray, names: Sequence[str], k: int = 3) -> list[str]:
    # the rarest attributes are the ones a random split distorts most (relative error ~ 1/sqrt(p·n))
    imbalance = np.abs(attributes.mean(axis=0) - 0.5) if len(attributes) else np.zeros(len(names))
    order = np.argsort(-imbalance, kind="stable")[:k]
    return [names[i] for i in sorted(order)]


def _interleave(n: int, frac: np.ndarray) -> np.ndarray:
    """Split id per position: weighted round-robin, so every run of positions is near-proportional."""
    counts = [0] * len(frac)
    fr = frac.tolist()
    out = np.empty(n, dtype=np.int64)
    for j in range(n):
        k = max(range(len(fr)), key=lambda s: fr[s] * (j + 1) - counts[s])
        counts[k] += 1
        out[j] = k
    return out


def balanced_split(attributes: np.ndarray, names: Sequence[str],
                   fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0,
                   stratify: Sequence[str] | None = None) -> tuple[list[np.ndarray], dict]:
    """Stratified split of N items: index arrays per split and a prevalence report.

    Strata are the joint values of the `stratify` attributes (default: the 3 most imbalanced).
    Items are shuffled within strata, strata laid end to end, and split ids dealt by weighted
    round-robin, so each stratum is shared in the given fractions to within two items and split
    sizes match N·fraction to within one. Report: {split: {attribute: prevalence}}, with "all".
    """
    attributes = np.asarray(attributes, dtype=np.float64)
    if attributes.ndim == 1 and len(names) == 0:
        attributes = attributes.reshape(-1, 0)
    if attributes.ndim != 2 or attributes.shape[1] != len(names):
        raise ValueError(f"attributes must be [N, {len(names)}] to match names, got {attributes.shape}")
    frac = _check_fractions(fractions)
    chosen = list(_default_stratify(attributes, names) if stratify is None else stratify)
    unknown = [s for s in chosen if s not in names]
    if unknown:
        raise ValueError(f"unknown stratify attribute(s) {unknown}; choose from {list(names)}")
    cols = [list(names).index(s) for s in chosen]
    rng = np.random.default_rng(seed)
    n = len(attributes)
    strata = (attributes[:, cols] > 0.5).astype(np.int64) @ (1 << np.arange(len(cols), dtype=np.int64))
    # random permutation first, then a stable sort by a shuffled stratum order: random within strata
    perm = rng.permutation(n)
    relabel = rng.permutation(1 << len(cols)) if cols else np.zeros(1, dtype=np.int64)
    order = perm[np.argsort(relabel[strata[perm]], kind="stable")]
    ids = _interleave(n, frac)
    splits = [np.sort(order[ids == k]) for k in range(len(frac))]
    report = prevalence_report(attributes, names, dict(zip(_split_names(len(frac)), splits)))
    return splits, report


def prevalence_report(attributes: np.ndarray, names: Sequence[str],
                      splits: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """{split: {attribute: fraction of items with it}} for the given index arrays, plus "all"."""
    attributes = np.asarray(attributes, dtype=np.float64).reshape(len(attributes), len(names))
    report = {}
    for split, idx in {"all": np.arange(len(attributes)), **splits}.items():
        sub = attributes[idx]
        report[split] = {a: float(sub[:, j].mean()) if len(sub) else float("nan")
                         for j, a in enumerate(names)}
    return report


def prevalence_table(report: dict[str, dict[str, float]]) -> str:
    """Markdown table of a prevalence report: one row per attribute, one column per split."""
    splits = list(report)
    attrs = list(next(iter(report.values()), {}))
    others = [s for s in splits if s != "all"]
    lines = ["| attribute | " + " | ".join(splits) + " | max abs diff |",
             "|---|" + "---:|" * (len(splits) + 1)]
    for a in attrs:
        vals = [report[s][a] for s in others]
        spread = (max(vals) - min(vals)) if vals else 0.0
        cells = " | ".join(f"{report[s][a]:.4f}" for s in splits)
        lines.append(f"| {a} | {cells} | {spread:.4f} |")
    return "\n".join(lines)


def split_indices(attributes: np.ndarray, names: Sequence[str], split: str, seed: int = 0,
                  fractions: Sequence[float] = DEFAULT_FRACTIONS) -> np.ndarray:
    """Indices of one named split ("train" | "valid" | "test" | "all") of a balanced split."""
    n = len(attributes)
    if split == "all":
        return np.arange(n)
    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLIT_NAMES + ('all',))}")
    parts, _ = balanced_split(attributes, names, fractions, seed=seed)
    return parts[SPLIT_NAMES.index(split)]
