"""What training/results.py reads: shipped bundles under assets/*/ and saved study outputs under results/data/.

Nothing here measures: every number RESULTS.md prints is read from one of these files, so the
page regenerates byte-identically from the same files (tests/test_results.py checks both).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

REPO = Path(__file__).resolve().parents[1]


@dataclass
class BundleFiles:
    """One shipped bundle's files: facelab.json, metrics.json, probes/probes.json, samples.png."""

    folder: Path
    meta: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    probes: dict[str, Any] = field(default_factory=dict)
    samples: Path | None = None

    @property
    def name(self) -> str:
        """The bundle's display name (facelab.json "name", else its folder)."""
        return str(self.meta.get("name") or self.folder.name)

    @property
    def kind(self) -> str:
        """Model kind from facelab.json ("vae", "hvae", "cvae", "dcgan", "stylegan", ...)."""
        return str(self.meta.get("kind") or "")

    @property
    def early(self) -> bool:
        """An early run (facelab.json status "early" or a name ending in _early), as the app labels it."""
        return self.meta.get("status") == "early" or self.name.endswith("_early")

    @property
    def background(self) -> str:
        """Background variant the bundle was trained on."""
        return str(self.meta.get("background") or self.metrics.get("background") or "original")

    def params(self) -> dict[str, Any]:
        """The model parameters of its run config."""
        return ((self.meta.get("run_config") or {}).get("model") or {}).get("params") or {}

    def metric(self, key: str) -> Any:
        """A flat metric: metrics.json "metrics" first (evaluate.py's latest), then facelab.json "metrics"."""
        for source in (self.metrics.get("metrics") or {}, self.meta.get("metrics") or {}):
            if key in source:
                return source[key]
        return None

    def fid(self, suffix: str = "") -> dict[str, Any] | None:
        """The shared FID protocol's record (fid, kid, kid_std, fid_floor, n, resolution, background)."""
        return (((self.metrics.get("details") or {}).get("fid_protocol") or {}).get(f"fid_1000{suffix}")
                or None)

    def tables(self) -> dict[str, Any]:
        """Probe tables (facelab.json "probes" → "tables", else probes/probes.json "tables")."""
        return ((self.meta.get("probes") or {}).get("tables") or self.probes.get("tables") or {})


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from disk, or {} when the file is absent or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_bundles(assets: Path) -> dict[str, BundleFiles]:
    """Every folder under assets/ with a facelab.json, keyed by folder name, in sorted order."""
    out = {}
    for folder in sorted(p for p in assets.iterdir() if (p / "facelab.json").is_file()) if assets.is_dir() else []:
        samples = folder / "samples.png"
        out[folder.name] = BundleFiles(folder, read_json(folder / "facelab.json"), read_json(folder / "metrics.json"),
                                       read_json(folder / "probes" / "probes.json"),
                                       samples if samples.is_file() else None)
    return out


def load_data(data: Path) -> dict[str, dict[str, Any]]:
    """results/data/*.json keyed by file stem, in sorted order."""
    return {p.stem: read_json(p) for p in sorted(data.glob("*.json"))} if data.is_dir() else {}


@dataclass
class Inputs:
    """Everything the generator reads, plus where it was read from."""

    assets: Path
    data_dir: Path
    bundles: dict[str, BundleFiles]
    data: dict[str, dict[str, Any]]

    def of_kind(self, *kinds: str) -> list[BundleFiles]:
        """Bundles of these kinds, in folder order."""
        return [b for b in self.bundles.values() if b.kind in kinds]

    def named(self, name: str) -> BundleFiles | None:
        """The bundle whose folder or display name is name."""
        return self.bundles.get(name) or next((b for b in self.bundles.values() if b.name == name), None)

    def seed(self, seed_id: str) -> dict[str, Any]:
        """One study's quoted numbers from results/data/seeds.json."""
        return next((s for s in self.data.get("seeds", {}).get("seeds", []) if s.get("id") == seed_id), {})

    def current(self, study: dict[str, Any], key: str = "bundle") -> BundleFiles | None:
        """The shipped bundle a study measured, or None when it is gone or was replaced since (steps differ)."""
        b = self.named(str(study.get(key) or ""))
        if b is None:
            return None
        steps = (b.meta.get("training") or {}).get("steps")
        return None if "steps" in study and steps is not None and study["steps"] != steps else b

    def studies(self, prefix: str) -> list[dict[str, Any]]:
        """Saved study outputs whose file stem starts with prefix (e.g. "intervention_")."""
        return [d for k, d in self.data.items() if k.startswith(prefix)]


def load_inputs(assets: Path, data: Path) -> Inputs:
    """Read every input once."""
    return Inputs(assets, data, load_bundles(assets), load_data(data))


# ---------------------------------------------------------------- formatting


def num(value: Any, digits: int = 3) -> str:
    """A number with fixed decimals; "—" for a missing or non-finite value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"


def count(value: Any) -> str:
    """An integer with thousands separators (as written in the seeds), or "—"."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "—"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"


def plain(value: Any) -> str:
    """A number as stored (shortest repr), a string as is, "—" for None."""
    if value is None:
        return "—"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def pair(values: Sequence[Any] | None, digits: int = 3) -> str:
    """'a / b' for a target-1 / target-0 pair."""
    return " / ".join(num(v, digits) for v in values) if values else "—"


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A markdown table; align is one letter per column ('l' or 'r', default: first left, rest right)."""
    align = align or "l" + "r" * (len(headers) - 1)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def pending(what: str, why: str) -> str:
    """A clearly marked pending line."""
    return f"**pending** — {what}: {why}"


@dataclass
class Page:
    """Where RESULTS.md and its figures go, so links are relative to the page."""

    out: Path
    figures: Path

    def figure(self, name: str) -> Path:
        """The path of a figure file in the figures folder."""
        return self.figures / name

    def link(self, path: Path | None, alt: str) -> str:
        """Markdown image link relative to the page ('' when the figure was not made)."""
        if path is None:
            return ""
        rel = Path(os.path.relpath(path, self.out.parent)).as_posix()
        return f"![{alt}]({rel})"

    def ref(self, path: Path) -> str:
        """An input folder as inline code: repository-relative, else its name (the page must not depend on
        where it is written, so a copy built elsewhere compares byte for byte)."""
        path = path.resolve()
        shown = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name
        return f"`{shown}/`"
