"""CelebA in its released layout: list_attr_celeba.txt, list_eval_partition.txt and img_align_celeba/.

Parsing is strict and explains itself: a malformed row is named by line number, a missing file by
what the CelebA release calls it. Re-exported from facelab.data.datasets.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import NoReturn, Sequence

import numpy as np

from facelab.data.datasets import SPLITS, _existing_dir, _FileFaces, log
from facelab.data.splits import SPLIT_NAMES
from facelab.data.transforms import to_binary


def _read_celeba_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """list_attr_celeba.txt -> (attribute names, file names, ±1 values mapped to {0,1})."""
    if not path.is_file():
        raise FileNotFoundError(f"CelebA: expected {path} (list_attr_celeba.txt from the CelebA release: "
                                "the image count, the 40 attribute names, then one ±1 row per image)")
    lines = path.read_text().splitlines()
    try:
        count, names = int(lines[0].split()[0]), lines[1].split()
    except (IndexError, ValueError):
        raise ValueError(f"{path}: line 1 must be the image count and line 2 the attribute names") from None
    body = [line for line in lines[2:] if line.strip()]
    if len(body) != count:
        raise ValueError(f"{path}: line 1 says {count} images but {len(body)} rows follow")
    heads, tails = zip(*(_split_row(line) for line in body)) if body else ((), ())
    with warnings.catch_warnings():  # a bad token ends the parse early: caught by the size check
        warnings.simplefilter("ignore", DeprecationWarning)
        # numpy's C parser: ~0.5 s for the 202,599 rows, 20x faster than int() per value
        values = np.fromstring(" ".join(tails), dtype=np.int8, sep=" ")
    if values.size != count * len(names):
        _explain_bad_row(path, body, len(names))
    values = values.reshape(count, len(names))
    return names, list(heads), to_binary(values, path.name).reshape(values.shape)


def _split_row(line: str) -> tuple[str, str]:
    parts = line.split(None, 1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def _explain_bad_row(path: Path, body: list[str], n_names: int) -> NoReturn:
    """Raise a ValueError naming the first malformed row of list_attr_celeba.txt."""
    for k, line in enumerate(body):
        row = line.split()
        if len(row) != n_names + 1:
            raise ValueError(f"{path}, line {k + 3}: expected a file name and {n_names} values, got {len(row) - 1}")
        if any(v not in ("-1", "1", "0") for v in row[1:]):
            raise ValueError(f"{path}, line {k + 3}: attribute values must be -1 or 1, got {line!r}")
    raise ValueError(f"{path}: could not parse the attribute values")


def _read_celeba_partition(path: Path) -> dict[str, int]:
    """list_eval_partition.txt -> {file name: 0 train | 1 valid | 2 test}."""
    if not path.is_file():
        raise FileNotFoundError(f"CelebA: expected {path} (list_eval_partition.txt from the CelebA release: "
                                "'<file> <0|1|2>' per image for the official train/valid/test split)")
    out = {}
    for k, line in enumerate(path.read_text().splitlines()):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise ValueError(f"{path}, line {k + 1}: expected '<file> <0|1|2>', got {line!r}")
        out[parts[0]] = int(parts[1])
    return out


def _select_names(available: Sequence[str], wanted: Sequence[str] | None, source: str) -> list[int]:
    if wanted is None:
        return list(range(len(available)))
    unknown = [a for a in wanted if a not in available]
    if unknown:
        raise ValueError(f"{source}: unknown attribute(s) {unknown}; available: {list(available)}")
    return [list(available).index(a) for a in wanted]


class CelebA(_FileFaces):
    """CelebA in its released layout, official split, 40 attributes mapped from ±1 to {0,1}.

    root holds img_align_celeba/ (or the Kaggle archive's nested img_align_celeba/img_align_celeba/),
    list_attr_celeba.txt and list_eval_partition.txt. crop=None takes the central 178×178 square;
    background="grey" | "blur" reads training/prepare_data.py's variants (see variant_path).
    Listed images missing on disk are left out as "missing"; check=True also scans the split's
    files and leaves out the unusable ones, counted by reason (see FaceDataset).
    """

    prepare_name = "celeba"

    def __init__(self, root: str | Path, split: str = "train", size: int = 64,
                 attributes: Sequence[str] | None = None, background: str = "original",
                 crop: int | None = None, check: bool = True) -> None:
        root = _existing_dir(root, "CelebA")
        if split not in SPLITS:
            raise ValueError(f"unknown CelebA split {split!r}; choose one of {', '.join(SPLITS)}")
        super().__init__(root, size, crop, background)
        images = root / "img_align_celeba"
        if not images.is_dir():
            raise FileNotFoundError(f"CelebA: expected the folder {images} (img_align_celeba/ from the CelebA "
                                    "release: the aligned and cropped 178x218 JPEGs)")
        if (images / "img_align_celeba").is_dir():  # the Kaggle archive nests the folder once more
            images = images / "img_align_celeba"
        names, fnames, labels = _read_celeba_attributes(root / "list_attr_celeba.txt")
        partition = _read_celeba_partition(root / "list_eval_partition.txt")
        self._require_variant()
        missing = [f for f in fnames if f not in partition]
        if missing:
            raise ValueError(f"CelebA: {len(missing)} image(s) of list_attr_celeba.txt are not in "
                             f"list_eval_partition.txt, e.g. {missing[0]}")
        cols = _select_names(names, attributes, "CelebA")
        self.attribute_names = [names[c] for c in cols]
        wanted = None if split == "all" else SPLIT_NAMES.index(split)
        rows = [i for i, f in enumerate(fnames) if wanted is None or partition[f] == wanted]
        rel = images.relative_to(root)
        self.files = [rel / fnames[i] for i in rows]
        self.labels = labels[rows][:, cols]
        self._drop_missing(images)
        if check:
            self._check_files(f"CelebA {split} split under {images}")

    def _drop_missing(self, images: Path) -> None:
        # one directory listing (~50 ms for 202,599 files) instead of a stat per image
        present = set(os.listdir(images))
        keep = [i for i, f in enumerate(self.files) if f.name in present]
        if self.files and not keep:
            raise FileNotFoundError(f"CelebA: none of the {len(self.files)} listed images is in {images}, "
                                    f"e.g. {self.files[0].name}; extract img_align_celeba.zip there")
        gone = sorted(set(range(len(self.files))) - set(keep))
        self.scanned += len(gone)
        for i in gone:
            self._skip(str(self.root / self.files[i]), "missing", warn=False)
        if gone:
            log.warning("CelebA: %d listed image(s) missing from %s are left out, e.g. %s",
                        len(gone), images, self.files[gone[0]].name)
        self._keep(keep)
