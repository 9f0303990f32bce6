"""Hugging Face datasets (a Hub id, a save_to_disk folder, or local data files) as a FaceDataset."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from facelab.data.datasets import FaceDataset
from facelab.data.file_checks import LOAD_ERRORS, classify, reason_of, require_usable
from facelab.data.transforms import center_crop_resize, is_binary, load_image, to_binary

def _offline_flag() -> str | None:
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in ("1", "ON", "YES", "TRUE"):
            return var
    return None


def _offline_message(repo_id: str, why: str) -> str:
    return (f"cannot download the Hugging Face dataset {repo_id!r}: {why}. Either run with network "
            "access (and HF_HUB_OFFLINE / HF_DATASETS_OFFLINE unset), or download it first where there is "
            f"network, e.g. `datasets.load_dataset({repo_id!r}).save_to_disk(DIR)` or "
            f"`hf download --repo-type dataset {repo_id} --local-dir DIR`, and pass DIR instead")


def _open_hub(source: str, split: str, revision: str | None) -> Any:
    """A datasets.Dataset from a save_to_disk folder, a local data folder/file, or a Hub id."""
    import datasets  # lazy: importing datasets costs ~1.3 s

    path = Path(source).expanduser()
    if path.exists():
        if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                if split not in ds:
                    raise ValueError(f"split {split!r} not in {path}; available: {list(ds)}")
                ds = ds[split]
            return ds
        if path.is_file():
            builders = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json", ".arrow": "arrow"}
            if path.suffix.lower() not in builders:
                raise ValueError(f"{path}: expected a save_to_disk folder, a data folder or one of {list(builders)}")
            return datasets.load_dataset(builders[path.suffix.lower()], data_files=str(path), split=split)
        return datasets.load_dataset(str(path), split=split)
    if source.startswith(("/", ".", "~")) or source.count("/") > 1:
        raise FileNotFoundError(f"dataset path {path} does not exist (and is not a Hub id 'owner/name')")
    flag = _offline_flag()
    if flag:
        raise ConnectionError(_offline_message(source, f"{flag}=1 is set (offline mode)"))
    try:
        return datasets.load_dataset(source, split=split, revision=revision)
    except ConnectionError as err:
        raise ConnectionError(_offline_message(source, f"the Hub is unreachable ({err})")) from err


def _hub_attribute_columns(ds: Any, image_column: str) -> list[str]:
    """Columns whose type can hold a binary label (bool, ints, floats, 2-class ClassLabel) and do."""
    import datasets

    numeric = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
               "float16", "float32", "float64")
    cols = []
    for name, feature in ds.features.items():
        if name == image_column:
            continue
        if isinstance(feature, datasets.ClassLabel) and feature.num_classes == 2:
            cols.append(name)
        elif isinstance(feature, datasets.Value) and feature.dtype in numeric:
            cols.append(name)
    if not cols:
        return []
    values = ds.select_columns(cols).with_format("numpy")[:]
    return [c for c in cols if is_binary(values[c])]


class HubDataset(FaceDataset):
    """A Hugging Face dataset (Hub id, save_to_disk folder or local data folder/file) as FaceDataset.

    attribute_columns=None takes every binary column (bool, 0/1, ±1, 2-class ClassLabel); []
    takes none. Hub ids need the network: offline, the error says how to download first.
    check=True scans every image cell first and leaves out the unusable ones (see FaceDataset).
    """

    def __init__(self, repo_id_or_path: str, split: str = "train", image_column: str = "image",
                 attribute_columns: Sequence[str] | None = None, size: int = 64,
                 crop: int | None = None, revision: str | None = None, check: bool = True) -> None:
        super().__init__(size, crop)
        import datasets

        ds = _open_hub(str(repo_id_or_path), split, revision)
        if image_column not in ds.column_names:
            raise ValueError(f"image column {image_column!r} not in the dataset; columns: {ds.column_names}")
        cols = _hub_attribute_columns(ds, image_column) if attribute_columns is None else list(attribute_columns)
        unknown = [c for c in cols if c not in ds.column_names]
        if unknown:
            raise ValueError(f"attribute column(s) {unknown} not in the dataset; columns: {ds.column_names}")
        values = ds.select_columns(cols).with_format("numpy")[:] if cols else {}
        self.attribute_names = cols
        self.labels = (np.stack([to_binary(values[c], c) for c in cols], axis=1) if cols
                       else np.zeros((len(ds), 0), dtype=np.float32))
        images = ds.select_columns([image_column])
        if isinstance(ds.features[image_column], datasets.Image):
            # undecoded bytes let load_image use JPEG draft decoding and keep decode errors ours
            images = images.cast_column(image_column, datasets.Image(decode=False))
        self._images, self.image_column, self.source = images, image_column, str(repo_id_or_path)
        self._rows = np.arange(len(ds))  # item -> dataset row (the scan leaves rows out)
        if check:
            self._check_cells()

    def _name(self, i: int) -> str:
        return f"{self.source}[{self._rows[i]}]"

    def _load(self, i: int) -> tuple[Image.Image, np.ndarray | None]:
        return _cell_image(self._images[int(self._rows[i])][self.image_column], self.size, self.crop), None

    def _check_cells(self, chunk: int = 1024) -> None:
        """Classify every image cell (read a chunk of rows at a time), keep the usable rows."""
        verdicts: list[str] = []
        for start in range(0, len(self._rows), chunk):
            cells = self._images[start:start + chunk][self.image_column]
            verdicts += [_cell_verdict(c, self.size, self.crop) for c in cells]
        good = self._scan(verdicts, [self._name(i) for i in range(len(self._rows))], self.source)
        self._rows, self.labels = self._rows[good], self.labels[good]


def _cell_verdict(value: Any, size: int, crop: int | None) -> str:
    """file_checks.classify of one image cell (bytes/path dict, path, PIL image or array)."""
    if isinstance(value, dict):
        value = value["bytes"] if value.get("bytes") is not None else value.get("path")
        if value is None:
            return "missing"
    if isinstance(value, (bytes, str)):
        return classify(value, size, crop)
    try:
        return require_usable(value if isinstance(value, Image.Image) else _array_image(value), size, crop)
    except LOAD_ERRORS as err:
        return reason_of(err)


def _cell_image(value: Any, size: int, crop: int | None) -> Image.Image:
    """One image cell of a HF dataset (bytes/path dict, path, PIL or uint8 array) -> size×size RGB."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return load_image(io.BytesIO(value["bytes"]), size, crop)
        if value.get("path"):
            return load_image(value["path"], size, crop)
        raise ValueError("image cell has neither bytes nor path")
    if isinstance(value, str):
        return load_image(value, size, crop)
    image = value if isinstance(value, Image.Image) else _array_image(value)
    require_usable(image, size, crop)
    return center_crop_resize(image, size, crop)


def _array_image(value: Any) -> Image.Image:
    """A uint8 [H,W] or [H,W,C] array cell as a PIL image."""
    arr = np.asarray(value)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3):
        raise ValueError(f"image cell of type {type(value).__name__} is not a uint8 image")
    return Image.fromarray(arr)
