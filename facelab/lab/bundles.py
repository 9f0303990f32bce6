"""The lab's bundle catalogue: find sources, load each bundle once (thread-safe), keep per-bundle errors.

A bundle that fails to load (missing file, wrong shapes, pickle inside, not on the Hub) is kept in
the catalogue with its error message, so the app can list it and keep serving every other bundle.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from facelab.bundle_files import PICKLE_SUFFIXES
from facelab.hub import Bundle, BundleError, load_bundle

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
# A folder holding any of these is a bundle candidate; image-only folders (examples) are not.
_BUNDLE_HINTS = ("facelab.json", "config.json", "*.safetensors", *(f"*{s}" for s in PICKLE_SUFFIXES))

ProgressFn = Callable[[float, str], Any]


class LabError(ValueError):
    """A request the lab cannot serve; the message says why and what to do instead."""


ORDER_FILE = "order.txt"  # assets/order.txt: folder names, best first (the app's default picks)


def default_sources(assets: str | Path = ASSETS_DIR) -> list[str]:
    """Every bundle-like folder directly under assets/: those named in order.txt first, then the rest sorted."""
    root = Path(assets)
    if not root.is_dir():
        return []
    found = [p for p in sorted(root.iterdir())
             if p.is_dir() and not is_classifier(p) and any(next(p.glob(h), None) for h in _BUNDLE_HINTS)]
    order_file = root / ORDER_FILE
    listed = order_file.read_text().split() if order_file.is_file() else []
    rank = {name: i for i, name in enumerate(listed)}
    return [str(p) for p in sorted(found, key=lambda p: (rank.get(p.name, len(rank)), p.name))]


def is_classifier(folder: Path) -> bool:
    """True for an image attribute classifier folder (shipped beside bundles, not a bundle itself)."""
    try:
        return json.loads((folder / "config.json").read_text()).get("_class_name") == "AttributeClassifier"
    except (OSError, ValueError, AttributeError):
        return False


def default_device() -> str:
    """'cuda' when a GPU is present, else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _source_name(source: str) -> str:
    """A display name before the bundle's metadata is known: folder (or its parent for '.../bundle')."""
    path = Path(source)
    if path.exists():
        return path.parent.name if path.name == "bundle" and path.parent.name else path.name
    return source


def _is_asset_name(source: str, assets: str | Path) -> bool:
    """True for a plain folder name (no path separator) that is not a path here but a folder of assets/."""
    return "/" not in source and not Path(source).exists() and (Path(assets) / source).is_dir()


EARLY_LABEL = "early run — samples are not faces yet"


def is_early(meta: dict[str, Any]) -> bool:
    """True for a bundle its facelab.json marks as an early or weak run ("status": "early", or a name
    ending in "_early" as the first CPU runs were called): such a bundle is never listed as ready."""
    status = str(meta.get("status") or "").lower()
    if status:
        return status == "early"
    return str(meta.get("name") or "").lower().endswith("_early")


@dataclass
class Entry:
    """One catalogue row: where a bundle comes from and either the loaded bundle or why it failed."""

    source: str
    name: str
    bundle: Bundle | None = None
    error: str | None = None

    @property
    def kind(self) -> str:
        """Model kind, or '?' when the bundle did not load."""
        return self.bundle.model.kind if self.bundle is not None else "?"


class BundleCatalog:
    """Bundles by display name, each loaded once on first use; safe to share between request threads."""

    def __init__(self, sources: list[str], device: str = "cpu", assets: str | Path = ASSETS_DIR):
        # a bare folder name of assets/ (`--model vae_synthfaces64`) is that folder, not a Hub id
        self.sources = [str(Path(assets) / s) if _is_asset_name(s, assets) else s for s in sources]
        self.device = device
        self._entries: dict[str, Entry] | None = None
        self._lock = threading.Lock()

    def _load_one(self, source: str) -> Entry:
        try:
            bundle = load_bundle(source, device=self.device)
        except BundleError as err:
            return Entry(source, _source_name(source), error=str(err))
        except Exception as err:  # any other failure stays this bundle's problem, never the app's
            return Entry(source, _source_name(source), error=f"{type(err).__name__}: {err}")
        return Entry(source, bundle.name, bundle=bundle)

    def load_all(self, progress: ProgressFn | None = None) -> list[Entry]:
        """Load every source once (later calls return the cache); names made unique."""
        with self._lock:
            if self._entries is None:
                entries: dict[str, Entry] = {}
                for i, source in enumerate(self.sources):
                    if progress is not None:
                        progress(i / max(1, len(self.sources)), f"loading {source}")
                    entry = self._load_one(source)
                    base, k = entry.name, 2
                    while entry.name in entries:  # two runs may share a folder name
                        entry.name, k = f"{base} ({k})", k + 1
                    entries[entry.name] = entry
                self._entries = entries
            return list(self._entries.values())

    def entries(self) -> list[Entry]:
        """Every catalogue row, loaded or failed, in source order."""
        return self.load_all()

    def names(self, where: Callable[[Bundle], bool] | None = None) -> list[str]:
        """Names of the bundles that loaded (and satisfy where, if given)."""
        return [e.name for e in self.entries()
                if e.bundle is not None and (where is None or where(e.bundle))]

    def get(self, name: str | None) -> Bundle:
        """The loaded bundle called name; a LabError says why when it is unknown or broken."""
        entries = {e.name: e for e in self.entries()}
        if not name:
            raise LabError(self.empty_message() if not self.names() else "choose a model first")
        if name not in entries:  # the folder a bundle came from names it too
            entries.update({_source_name(e.source): e for e in entries.values()
                            if _source_name(e.source) not in entries})
        if name not in entries:
            raise LabError(f"no model called {name!r}; available: {', '.join(self.names()) or 'none'}")
        entry = entries[name]
        if entry.bundle is None:
            raise LabError(f"model {name!r} failed to load: {entry.error}")
        return entry.bundle

    def choices(self, where: Callable[[Bundle], bool] | None = None) -> list[tuple[str, str]]:
        """(label, name) of the loaded bundles for a picker: early runs say so in their label."""
        return [(f"{e.name} ({EARLY_LABEL})" if is_early(e.bundle.meta) else e.name, e.name)
                for e in self.entries() if e.bundle is not None and (where is None or where(e.bundle))]

    def empty_message(self) -> str:
        """What to do when no bundle is available."""
        if not self.sources:
            return ("no models: assets/ holds no bundles yet. Start the app with --model FOLDER_OR_HUB_ID "
                    "(or FACELAB_MODELS=a,b) — train one with training/train.py.")
        return "no model loaded: every source failed (see the model list for the reasons)"

    def status_rows(self) -> list[list[str]]:
        """[name, kind, image size, dataset/background, status] per source, for the model table."""
        rows = []
        for e in self.entries():
            if e.bundle is None:
                rows.append([e.name, "?", "", "", f"error — {e.error}"])
                continue
            meta = e.bundle.meta
            data = f"{meta.get('dataset', '?')} / {meta.get('background', '?')}"
            status = "ready"
            if is_early(meta):
                status = EARLY_LABEL + (f": {meta['note']}" if meta.get("note") else "")
            rows.append([e.name, e.kind, str(e.bundle.model.image_size), data, status])
        return rows
