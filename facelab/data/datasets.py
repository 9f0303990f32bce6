"""Real face sources behind one FaceDataset contract: image folders here; CelebA, FFHQ, HF datasets beside.

Item: {"image": float32 [3,H,W] in [-1,1], "attributes": float32 [A] in {0,1},
"mask": float32 [1,H,W] (when masks exist)}; attribute_names on the dataset, factor_* None.
Bad files never crash a run and are never used silently: construction scans every file
(facelab.data.file_checks: missing, empty, not an image, truncated, unreadable, degenerate,
too small for `size`, fully transparent) and leaves the bad ones out, counted by reason; a file
that still fails on load (changed since, or check=False) is skipped then, and the next good item
stands in (counted per process: each DataLoader worker keeps its own count). `file_report()`
gives the totals for a run's outputs, `file_summary()` one line for its log. When a dataset root
has masks (facelab_background/mask/), every item carries one, so batches collate; an item whose
mask file is missing is skipped as "missing".
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from facelab.data.background import check_variant
from facelab.data.splits import SPLIT_NAMES, split_indices
from facelab.data.file_checks import (LOAD_ERRORS, SKIP_REASONS, UPSAMPLED, classify, describe, min_side,
                                      reason_of, tally)
from facelab.data.transforms import IMAGE_EXTENSIONS, is_binary, load_image, load_mask, to_binary
from facelab.imaging import from_pil

log = logging.getLogger(__name__)

BACKGROUND_DIR = "facelab_background"
MASK = "mask"
SPLITS = SPLIT_NAMES + ("all",)
_LABEL_MODES = ("none", "json", "csv")
_CSV_KEYS = ("filename", "file", "image", "image_id", "path", "name")


def variant_path(root: Path, rel: Path, variant: str) -> Path:
    """Where training/prepare_data.py writes the background variant (or "mask") of root/rel.

    root/facelab_background/<variant>/<rel with a .png suffix>. Variant images keep the source
    image's size (crop and resize happen at load time); masks are uint8 L, 255 = foreground.
    """
    if variant != MASK:
        check_variant(variant)
    rel = Path(rel)
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"rel must be a path inside the dataset root, got {rel}")
    return Path(root) / BACKGROUND_DIR / variant / rel.with_suffix(".png")


def find_images(root: str | Path) -> list[Path]:
    """Image files under root, recursive and sorted, relative to root (skips hidden and facelab_background/)."""
    root = Path(root)
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        top = Path(dirpath) == root
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not (top and d == BACKGROUND_DIR))
        found += [(Path(dirpath) / f).relative_to(root) for f in filenames
                  if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")]
    return sorted(found)


def _existing_dir(root: str | Path | None, what: str) -> Path:
    if root is None:
        raise ValueError(f"{what} needs root=<folder>")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: folder {path} does not exist")
    return path


class FaceDataset(Dataset):
    """Base of the real sources: builds contract items and substitutes (and counts) unusable images.

    `labels` holds every item's attributes as float32 [N, A] in {0,1} (for balanced_split, probes).
    `file_status` maps each file that is not plainly usable to its verdict (a skip reason or
    "upsampled"); `scanned` counts the files the construction scan looked at.
    """

    factor_names: list[str] | None = None
    factor_sizes: list[int] | None = None

    def __init__(self, size: int, crop: int | None = None) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        self.size, self.crop = size, crop
        self.attribute_names: list[str] = []
        self.labels = np.zeros((0, 0), dtype=np.float32)  # [N, A] in {0,1}
        self.file_status: dict[str, str] = {}  # keyed by name: a file met again on load is not counted twice
        self.scanned = 0
        self._bad: set[int] = set()

    @property
    def skipped_files(self) -> list[str]:
        """The files left out (at construction or on load), in the order they were found."""
        return [name for name, verdict in self.file_status.items() if verdict != UPSAMPLED]

    @property
    def skipped(self) -> int:
        """How many files were left out (at construction or on load), whatever the reason."""
        return len(self.skipped_files)

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        """Files left out per reason (file_checks.SKIP_REASONS order, zeros left out)."""
        return tally(self.file_status.values())

    @property
    def upsampled(self) -> int:
        """Files kept although their resized square is under `size` px (at least half of it)."""
        return sum(v == UPSAMPLED for v in self.file_status.values())

    def file_report(self) -> dict[str, Any]:
        """The totals a run records (facelab.json "data_files"): files scanned, used, skipped by reason."""
        return {"scanned": self.scanned, "used": len(self), "skipped": self.skipped_by_reason,
                "upsampled": self.upsampled, "image_size": self.size, "min_side": min_side(self.size)}

    def file_summary(self) -> str:
        """One line for a run's log: the totals and the first skipped files."""
        text = (f"{self.scanned} files scanned, {len(self)} used; skipped: {describe(self.skipped_by_reason)}; "
                f"{self.upsampled} upsampled (short side {min_side(self.size)}-{self.size - 1} px)")
        return text + (f"; e.g. {', '.join(self.skipped_files[:3])}" if self.skipped else "")

    def __len__(self) -> int:
        return len(self.labels)

    def _name(self, i: int) -> str:
        return f"item {i}"

    def _load(self, i: int) -> tuple[Image.Image, np.ndarray | None]:
        raise NotImplementedError

    def _skip(self, name: str, err: BaseException | str, warn: bool = True) -> None:
        """Record a left-out file; err is the exception (its reason is derived) or the reason itself."""
        self.file_status[name] = err if isinstance(err, str) else reason_of(err)
        if warn:
            log.warning("skipping image %s (%s): %s", name, self.file_status[name], err)

    def _scan(self, verdicts: Sequence[str], names: Sequence[str], where: str) -> list[int]:
        """Record a construction scan; the indices of usable items (raises when there are none)."""
        good = []
        for i, (verdict, name) in enumerate(zip(verdicts, names)):
            if verdict in SKIP_REASONS:
                self.file_status[name] = verdict
            else:
                good.append(i)
                if verdict == UPSAMPLED:
                    self.file_status[name] = verdict
        self.scanned += len(verdicts)
        counts = tally(verdicts)
        if verdicts and not good:
            raise ValueError(f"none of the {len(verdicts)} images in {where} is usable at {self.size} px: "
                             f"{describe(counts)}; e.g. {list(names[:3])}")
        if counts:  # one line for the whole scan: a folder with thousands of bad files stays readable
            log.warning("%s: %d of %d images left out (%s), e.g. %s", where, sum(counts.values()), len(verdicts),
                        describe(counts), [n for n, v in zip(names, verdicts) if v in SKIP_REASONS][:3])
        upsampled = sum(v == UPSAMPLED for v in verdicts)
        if upsampled:
            log.warning("%s: %d of %d images are under %d px and are upsampled (at most 2x: the short side is "
                        ">= %d px)", where, upsampled, len(verdicts), self.size, min_side(self.size))
        return good

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n}")
        index %= n
        for step in range(n):
            j = (index + step) % n
            if j in self._bad:
                continue
            try:
                image, mask = self._load(j)
            except LOAD_ERRORS as err:  # a bad file must not end a training run: use the next one
                self._bad.add(j)
                self._skip(self._name(j), err)
                continue
            item = {"image": from_pil(image), "attributes": torch.from_numpy(self.labels[j].copy())}
            if mask is not None:
                item["mask"] = torch.from_numpy(mask)[None]
            return item
        raise RuntimeError(f"no usable image left: all {n} failed to load ({describe(self.skipped_by_reason)}), "
                           f"e.g. {self.skipped_files[:3]}")


class _FileFaces(FaceDataset):
    """Images stored as files under a root, with background variants and masks beside them."""

    prepare_name = "folder"

    def __init__(self, root: Path, size: int, crop: int | None, background: str) -> None:
        super().__init__(size, crop)
        self.root = Path(root)
        self.background = check_variant(background)
        self.files: list[Path] = []
        self.has_masks = (self.root / BACKGROUND_DIR / MASK).is_dir()

    def _require_variant(self) -> None:
        """Called once the source itself checked out, so a missing source is reported first."""
        folder = self.root / BACKGROUND_DIR / self.background
        if self.background != "original" and not folder.is_dir():
            raise FileNotFoundError(
                f"background={self.background!r} reads images written by training/prepare_data.py under "
                f"{folder}, which does not exist; run `python training/prepare_data.py --dataset "
                f"{self.prepare_name} --root {self.root}` first")

    def image_path(self, i: int) -> Path:
        """The file item i is read from (the source image or its background variant)."""
        rel = self.files[i]
        return self.root / rel if self.background == "original" else variant_path(self.root, rel, self.background)

    def _name(self, i: int) -> str:
        return str(self.image_path(i))

    def _load(self, i: int) -> tuple[Image.Image, np.ndarray | None]:
        path = self.image_path(i)
        image = load_image(path, self.size, self._crop_for(i, path))
        if not self.has_masks:
            return image, None
        mask_path = variant_path(self.root, self.files[i], MASK)
        return image, load_mask(mask_path, self.size, self._crop_for(i, mask_path))

    def _crop_for(self, i: int, path: Path) -> float | None:
        """self.crop in the pixels of path: a variant or mask written smaller (prepare_data --size)
        is the source's largest centred square, so the crop scales with it."""
        source = self.root / self.files[i]
        if self.crop is None or path == source:
            return self.crop
        with Image.open(source) as src, Image.open(path) as other:
            if src.size == other.size:
                return self.crop
            return self.crop * min(other.size) / min(src.size)

    def _keep(self, idx: Sequence[int] | np.ndarray) -> None:
        idx = np.asarray(idx, dtype=np.int64)
        self.files = [self.files[i] for i in idx]
        self.labels = self.labels[idx]

    def _verdict(self, i: int) -> str:
        """file_checks.classify of the file item i reads (and "missing" when its mask is)."""
        path = self.image_path(i)
        if self.has_masks and not variant_path(self.root, self.files[i], MASK).is_file():
            return "missing"
        try:
            crop = self._crop_for(i, path)
        except LOAD_ERRORS as err:
            return reason_of(err)
        return classify(path, self.size, crop)

    def _check_files(self, where: str) -> None:
        """Scan every file, leave out the unusable ones (counted by reason)."""
        start = time.perf_counter()
        verdicts = [self._verdict(i) for i in range(len(self.files))]
        self._keep(self._scan(verdicts, [self._name(i) for i in range(len(self.files))], where))
        log.info("%s: %d files checked in %.1f s", where, len(verdicts), time.perf_counter() - start)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"label file {path} is not valid JSON: {err}") from None


def _read_csv(path: Path) -> dict[str, dict[str, str]]:
    """labels.csv -> {relative file name: {column: value}}; the file column is named or first."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if len(fields) < 2:
            raise ValueError(f"{path}: expected a header with a file-name column and attribute columns")
        key = next((c for c in fields if c.strip().lower() in _CSV_KEYS), fields[0])
        return {Path(row[key].strip()).as_posix(): {c: row[c] for c in fields if c != key}
                for row in reader if (row.get(key) or "").strip()}


def _label_matrix(records: list[dict | None], wanted: Sequence[str] | None, files: list[Path],
                  order: Sequence[str] | None = None) -> tuple[list[str], np.ndarray, list[int]]:
    """Per-file label dicts -> (names, [M,A] {0,1}, kept file indices); unlabelled files dropped."""
    kept = [i for i, r in enumerate(records) if r]
    if not kept:
        return [], np.zeros((0, 0), dtype=np.float32), []
    if wanted is None:
        common = [k for k in records[kept[0]] if all(k in records[i] for i in kept)]
        if order is not None:
            common = [k for k in order if k in common]
        scalar = (bool, int, float, str, np.number, np.bool_)
        wanted = [k for k in common if all(isinstance(records[i][k], scalar) for i in kept)
                  and is_binary([records[i][k] for i in kept])]
    for name in wanted:
        lacking = [i for i in kept if name not in records[i]]
        if lacking:
            raise ValueError(f"attribute {name!r} is missing from the labels of {len(lacking)} image(s), "
                             f"e.g. {files[lacking[0]]}")
    cols = [to_binary([records[i][name] for i in kept], name) for name in wanted]
    matrix = np.stack(cols, axis=1) if cols else np.zeros((len(kept), 0), dtype=np.float32)
    return list(wanted), matrix, kept


class ImageFolder(_FileFaces):
    """Any folder of jpg/jpeg/png/webp/bmp images (recursive), with optional JSON or CSV labels.

    labels: "json" (a flat {attribute: value} file beside each image, same stem), "csv"
    (root/labels.csv: a file-name column, then attribute columns), "none", or None to detect.
    Attributes default to every binary column all labelled images share; images without
    labels are left out (counted in `unlabelled`). check=True scans every file first and leaves
    out the unusable ones (see FaceDataset). split "all" keeps everything; "train" | "valid" |
    "test" take a balanced 80/10/10 split (seed split_seed) over the attributes of the usable files.
    """

    def __init__(self, root: str | Path, size: int = 64, labels: str | None = None,
                 attributes: Sequence[str] | None = None, background: str = "original",
                 split: str = "all", crop: int | None = None, check: bool = True, split_seed: int = 0) -> None:
        root = _existing_dir(root, type(self).__name__)
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        super().__init__(root, size, crop, background)
        self.files = find_images(root)
        if not self.files:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {root}")
        self._require_variant()
        records = self._records(labels)
        self._apply_labels(records, attributes)
        if check:
            self._check_files(str(root))
        self._keep(split_indices(self.labels, self.attribute_names, split, seed=split_seed))

    def _records(self, labels: str | None) -> list[dict | None] | None:
        if labels is not None and labels not in _LABEL_MODES:
            raise ValueError(f"unknown labels={labels!r}; choose one of {', '.join(_LABEL_MODES)} or None to detect")
        detect = labels is None
        csv_path = self.root / "labels.csv"
        if labels is None:
            labels = "csv" if csv_path.is_file() else "json"
        if labels == "none":
            return None
        if labels == "csv":
            if not csv_path.is_file():
                raise FileNotFoundError(f"labels='csv' reads {csv_path} (a file-name column, then attributes); "
                                        "not found")
            table = _read_csv(csv_path)
            return [table.get(f.as_posix(), table.get(f.name)) for f in self.files]
        jsons = [self.root / f.with_suffix(".json") for f in self.files]
        found = [p.is_file() for p in jsons]
        if not any(found):
            if detect:
                return None
            raise FileNotFoundError(f"labels='json' reads <image stem>.json beside each image under {self.root}; "
                                    "none found")
        return [_load_json(p) if ok else None for p, ok in zip(jsons, found)]

    def _apply_labels(self, records: list[dict | None] | None, attributes: Sequence[str] | None,
                      order: Sequence[str] | None = None) -> None:
        self.unlabelled = 0
        if records is None:
            if attributes:
                raise ValueError(f"attributes {list(attributes)} requested but {self.root} has no labels")
            self.labels = np.zeros((len(self.files), 0), dtype=np.float32)
            return
        records = [r if isinstance(r, dict) else None for r in records]
        names, matrix, kept = _label_matrix(records, attributes, self.files, order)
        if not names and attributes is None:  # no binary attribute to learn: keep every image
            log.warning("labels under %s share no binary attribute; loading without attributes", self.root)
            self.labels = np.zeros((len(self.files), 0), dtype=np.float32)
            return
        if not kept:
            raise ValueError(f"none of the {len(self.files)} images under {self.root} has a usable label; "
                             "check the label file names, or pass labels='none'")
        self.unlabelled = len(self.files) - len(kept)
        if self.unlabelled:
            log.warning("%d of %d images under %s have no labels and are left out",
                        self.unlabelled, len(self.files), self.root)
        self.files = [self.files[i] for i in kept]
        self.attribute_names, self.labels = names, matrix
