"""FFHQ: an image folder with FFHQ-Features-Dataset JSON labels mapped to CelebA-named attributes."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from facelab.data.datasets import ImageFolder, _load_json
from facelab.data.transforms import FFHQ_ATTRIBUTES, ffhq_attributes


class FFHQ(ImageFolder):
    """FFHQ as an image folder, with FFHQ-Features-Dataset JSON mapped to CelebA-named attributes.

    Labels come from <stem>.json beside each image, or from labels_dir/<stem>.json (default:
    root/json/ when present, the Features-Dataset layout). Accepted forms: the Face API list
    [{"faceAttributes": {...}}], {"faceAttributes": {...}} or flat {"gender", "age", ...}; see
    transforms.ffhq_attributes for the mapping. `ages` holds each image's age (NaN if unknown);
    age_range=(lo, hi) keeps lo <= age < hi, e.g. (15, inf) for seed 000's over-15 faces.
    """

    prepare_name = "ffhq"

    def __init__(self, root: str | Path, size: int = 128, labels: str | None = None,
                 attributes: Sequence[str] | None = None, background: str = "original",
                 split: str = "all", crop: int | None = None, labels_dir: str | Path | None = None,
                 young_age: float = 30.0, age_range: tuple[float, float] | None = None,
                 check: bool = True, split_seed: int = 0) -> None:
        self._labels_dir = None if labels_dir is None else Path(labels_dir)
        self._young_age, self._age_range = young_age, age_range
        super().__init__(root, size, labels, attributes, background, split, crop, check, split_seed)

    def _records(self, labels: str | None) -> list[dict | None] | None:
        if labels not in (None, "json", "none"):
            raise ValueError(f"FFHQ labels must be 'json', 'none' or None (detect), got {labels!r}")
        folder = self._labels_dir
        if folder is None and (self.root / "json").is_dir():
            folder = self.root / "json"
        paths = [(folder / f"{f.stem}.json") if folder else self.root / f.with_suffix(".json") for f in self.files]
        self.ages = np.full(len(self.files), np.nan, dtype=np.float32)
        if labels == "none":
            return None
        found = [p.is_file() for p in paths]
        if not any(found):
            if labels is None:
                return None
            raise FileNotFoundError(f"FFHQ labels='json': no <stem>.json found in {folder or self.root}")
        records: list[dict | None] = []
        for k, (p, ok) in enumerate(zip(paths, found)):
            try:
                attrs, self.ages[k] = ffhq_attributes(_load_json(p), self._young_age) if ok else ({}, np.nan)
            except ValueError as err:
                raise ValueError(f"{p}: {err}") from None
            records.append(attrs or None)
        return records

    def _apply_labels(self, records: list[dict | None] | None, attributes: Sequence[str] | None,
                      order: Sequence[str] | None = None) -> None:
        if self._age_range is not None and records is None:
            raise ValueError("age_range needs FFHQ JSON labels with ages; none were found or labels='none'")
        ages, before = self.ages, {f: k for k, f in enumerate(self.files)}
        super()._apply_labels(records, attributes, FFHQ_ATTRIBUTES)
        self.ages = ages[[before[f] for f in self.files]]
        if self._age_range is not None:
            lo, hi = self._age_range
            self._keep(np.flatnonzero((self.ages >= lo) & (self.ages < hi)))

    def _keep(self, idx: Sequence[int] | np.ndarray) -> None:
        idx = np.asarray(idx, dtype=np.int64)
        super()._keep(idx)
        self.ages = self.ages[idx]
