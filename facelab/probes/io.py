"""Probes on disk: folder/probes.safetensors (every array) + folder/probes.json (tables, names, scores).

Never pickle. Arrays live under namespaced keys, e.g. "svm/per_level/z2/Male/w" for the weights of
the level-2 SVM for Male; the JSON says which keys exist and holds everything that is not an array.

    probes.json = {"format": "facelab-probes", "version": 1,
                   "arrays": {key: shape},                       # checked against the safetensors file
                   "tables": {key: ProbeTable.to_dict() + levels per column},
                   "directions": {key: {"names": [...], "info": {...}}},
                   "pca": {key: {"n_components": k, "var_ratio": [...]}},
                   ...anything the caller adds (level names, model, dataset)}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from facelab.probes.classifiers import LinearProbe, ProbeTable, to_numpy
from facelab.probes.directions import PCABasis

ARRAYS_FILE = "probes.safetensors"
META_FILE = "probes.json"
FORMAT = "facelab-probes"
VERSION = 1


class ProbesError(RuntimeError):
    """A probes file is corrupt or inconsistent; the message names the file."""


def _key(prefix: str, *names: str) -> str:
    """prefix/name/...: the prefix may be namespaced ('svm/per_level'); names may not contain '/'."""
    if not prefix or prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"probe key prefix {prefix!r} must be non-empty without leading or trailing '/'")
    for name in names:
        if not name or "/" in name:
            raise ValueError(f"probe key part {name!r} must be non-empty and contain no '/'")
    return "/".join((prefix, *names))


# ---------------------------------------------------------------- packers (flat array dicts)


def pack_probe(probe: LinearProbe, prefix: str) -> dict[str, np.ndarray]:
    """A linear probe's arrays under prefix/{w,b,mean,scale}."""
    return {f"{prefix}/w": np.asarray(probe.w), f"{prefix}/b": np.asarray([probe.b], np.float64),
            f"{prefix}/mean": np.asarray(probe.mean), f"{prefix}/scale": np.asarray(probe.scale)}


def unpack_probe(arrays: dict[str, np.ndarray], prefix: str, levels: tuple[int, ...], attribute: str,
                 accuracy: float = float("nan")) -> LinearProbe:
    """Inverse of pack_probe (levels, attribute and accuracy come from the JSON)."""
    return LinearProbe(w=arrays[f"{prefix}/w"], b=float(arrays[f"{prefix}/b"][0]), mean=arrays[f"{prefix}/mean"],
                       scale=arrays[f"{prefix}/scale"], levels=tuple(levels), attribute=attribute,
                       accuracy=accuracy)


def pack_table(table: ProbeTable, prefix: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A table's probes as arrays under prefix/<column>/<attribute>/..., and its JSON entry."""
    arrays: dict[str, np.ndarray] = {}
    levels: dict[str, list[int]] = {}
    for (attribute, column), probe in table.probes.items():
        arrays.update(pack_probe(probe, _key(prefix, column, attribute)))
        levels[column] = [int(k) for k in probe.levels]
    return arrays, {**table.to_dict(), "levels": levels}


def unpack_table(arrays: dict[str, np.ndarray], entry: dict[str, Any], prefix: str) -> ProbeTable:
    """Inverse of pack_table."""
    table = ProbeTable.from_dict(entry)
    for j, column in enumerate(table.columns):
        if column not in entry.get("levels", {}):
            continue  # MLP tables keep scores only
        for a, attribute in enumerate(table.attributes):
            table.probes[(attribute, column)] = unpack_probe(
                arrays, _key(prefix, column, attribute), tuple(entry["levels"][column]), attribute,
                float(table.accuracy[a, j]))
    return table


def pack_directions(directions: dict[str, Any], prefix: str) -> dict[str, np.ndarray]:
    """Direction vectors under prefix/<name>."""
    return {_key(prefix, name): to_numpy(v).astype(np.float64) for name, v in directions.items()}


def unpack_directions(arrays: dict[str, np.ndarray], prefix: str, names: list[str]) -> dict[str, np.ndarray]:
    """Inverse of pack_directions."""
    return {name: arrays[_key(prefix, name)] for name in names}


def pack_pca(basis: PCABasis, prefix: str) -> dict[str, np.ndarray]:
    """A PCA basis under prefix/{mean,components,std,var_ratio} (GANSpace's four arrays)."""
    return {f"{prefix}/{k}": np.asarray(getattr(basis, k)) for k in ("mean", "components", "std", "var_ratio")}


def unpack_pca(arrays: dict[str, np.ndarray], prefix: str) -> PCABasis:
    """Inverse of pack_pca."""
    return PCABasis(**{k: arrays[f"{prefix}/{k}"] for k in ("mean", "components", "std", "var_ratio")})


# ---------------------------------------------------------------- the container


@dataclass
class Probes:
    """Everything in a probes folder: arrays by namespaced key, and the JSON metadata."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def _replace(self, section: str, key: str, arrays: dict[str, np.ndarray], entry: dict[str, Any]) -> None:
        """Store one entry, dropping arrays an earlier entry left under the same key."""
        self.arrays = {k: v for k, v in self.arrays.items() if not k.startswith(key + "/")}
        self.arrays.update(arrays)
        self.meta.setdefault(section, {})[key] = entry

    def _entry(self, section: str, key: str) -> dict[str, Any]:
        entries = self.meta.get(section, {})
        if key not in entries:
            raise KeyError(f"no {section} entry {key!r}; stored: {sorted(entries)}")
        return entries[key]

    def add_table(self, key: str, table: ProbeTable) -> None:
        """Store a probe table (scores in JSON, probe arrays under key/...), e.g. key 'svm/per_level'."""
        arrays, entry = pack_table(table, key)
        self._replace("tables", key, arrays, entry)

    def table(self, key: str) -> ProbeTable:
        """The probe table stored under key, with its linear probes."""
        return unpack_table(self.arrays, self._entry("tables", key), key)

    def add_directions(self, key: str, directions: dict[str, Any], info: dict[str, Any] | None = None) -> None:
        """Store named direction vectors under key/<name>, with optional JSON info (e.g. accuracies)."""
        entry = {"names": list(directions), "info": dict(info or {})}
        self._replace("directions", key, pack_directions(directions, key), entry)

    def directions(self, key: str) -> dict[str, np.ndarray]:
        """The named direction vectors stored under key."""
        return unpack_directions(self.arrays, key, self._entry("directions", key)["names"])

    def add_pca(self, key: str, basis: PCABasis) -> None:
        """Store a PCA basis under key/{mean,components,std,var_ratio}."""
        entry = {"n_components": int(len(basis.std)), "var_ratio": np.asarray(basis.var_ratio).tolist()}
        self._replace("pca", key, pack_pca(basis, key), entry)

    def pca(self, key: str) -> PCABasis:
        """The PCA basis stored under key."""
        self._entry("pca", key)
        return unpack_pca(self.arrays, key)

    def save(self, folder: str | Path) -> Path:
        """Write probes.safetensors + probes.json into folder."""
        return save_probes(folder, self.arrays, self.meta)


# ---------------------------------------------------------------- files


def _storage(a: np.ndarray) -> np.ndarray:
    """float64 arrays stored as float32; every other dtype as it is."""
    return a.astype(np.float32) if a.dtype == np.float64 else a


def save_probes(folder: str | Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write folder/probes.safetensors (arrays) and folder/probes.json (meta + array listing), atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # float64 is the fitting precision, float32 the storage one: half the bytes on disk and on the
    # Hub, and a probe's decision moves by ~1e-7 of its scale (load_probes widens them back)
    arrays = {k: np.ascontiguousarray(_storage(to_numpy(v))) for k, v in arrays.items()}
    full = {**meta, "format": FORMAT, "version": VERSION,
            "arrays": {k: list(v.shape) for k, v in sorted(arrays.items())}}
    # Temp file + rename: a crash never leaves half a file that would load as corrupt.
    tmp = folder / (ARRAYS_FILE + ".tmp")
    save_file(arrays, str(tmp), metadata={"format": FORMAT})
    os.replace(tmp, folder / ARRAYS_FILE)
    tmp = folder / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(full, indent=1, sort_keys=True))
    os.replace(tmp, folder / META_FILE)
    return folder


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"probes metadata file missing: {path}")
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ProbesError(f"probes metadata file {path} is corrupt (not valid JSON: {err})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ProbesError(f"{path} is not a facelab probes file (no \"format\": \"{FORMAT}\")")
    if int(meta.get("version", 0)) > VERSION:
        raise ProbesError(f"{path} has probes format version {meta['version']}; this facelab reads <= {VERSION}")
    return meta


def load_probes(folder: str | Path) -> Probes:
    """Read folder/probes.safetensors + folder/probes.json; clear errors name a missing or corrupt file."""
    folder = Path(folder)
    meta = _read_meta(folder / META_FILE)
    path = folder / ARRAYS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"probes array file missing: {path} (its metadata {folder / META_FILE} exists)")
    try:
        arrays = load_file(str(path))
    except Exception as err:  # safetensors raises its own error type (and OSError/ValueError variants)
        raise ProbesError(f"probes array file {path} is corrupt or unreadable: {err}") from err
    listed = meta.get("arrays", {})
    missing = sorted(set(listed) - set(arrays))
    wrong = sorted(k for k in set(listed) & set(arrays) if list(arrays[k].shape) != list(listed[k]))
    extra = sorted(set(arrays) - set(listed))
    if missing or wrong or extra:
        raise ProbesError(f"probes array file {path} does not match {folder / META_FILE}: "
                          f"missing {missing[:5]}, wrong shape {wrong[:5]}, unexpected {extra[:5]}")
    # a NaN direction or basis would move every face to NaN, drawn as a black image
    bad = sorted(k for k, v in arrays.items() if v.dtype.kind in "fc" and not np.isfinite(v).all())
    if bad:
        raise ProbesError(f"probes array file {path} holds NaN or infinite values in {len(bad)} array(s) "
                          f"({', '.join(bad[:3])})")
    arrays = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in arrays.items()}
    return Probes(arrays=arrays, meta=meta)
