"""The Results tab: what a bundle knows about itself — metrics, probe tables, PCA spectrum, curves, samples.

Metrics come from facelab.json ("metrics") and metrics.json (training/evaluate.py), probe tables and
PCA bases from probes/ (training/probe.py), training curves from TensorBoard event files or a JSON-lines
/CSV history in the bundle (or the run folder around it). Anything missing is said, not faked.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from facelab.hub import Bundle
from facelab.lab_plots import curves, spectra
from facelab.lab_probes import pca_keys, probes_of, table_keys

DISENTANGLEMENT_KEYS = ("beta_vae", "factor_vae", "mig", "dci")
FID_KEYS = ("fid", "kid", "fd_attr", "kd_attr")
HISTORY_FILES = ("history.jsonl", "metrics.jsonl", "history.json", "history.csv", "metrics.csv")


def flatten(data: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested dicts as {'a.b.c': value}."""
    out: dict[str, float] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        out[prefix[:-1]] = float(data)
    return out


def metrics(bundle: Bundle) -> dict[str, float]:
    """Every numeric metric the bundle carries (facelab.json 'metrics', then metrics.json 'metrics')."""
    out = flatten(bundle.meta.get("metrics") or {})
    out.update(flatten(_metrics_file(bundle).get("metrics") or {}))
    return out


def _metrics_file(bundle: Bundle) -> dict[str, Any]:
    path = bundle.path / "metrics.json"
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except (ValueError, OSError):
        return {"notes": {"metrics.json": "unreadable (not valid JSON)"}}
    return data if isinstance(data, dict) else {}


def metric_notes(bundle: Bundle) -> list[str]:
    """training/evaluate.py's notes (what was skipped and why)."""
    notes = _metrics_file(bundle).get("notes") or {}
    return [f"{k}: {v}" for k, v in sorted(notes.items())] if isinstance(notes, dict) else []


def _fmt(v: float) -> str:
    return "—" if math.isnan(v) else (f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}")


def metrics_markdown(values: dict[str, float], title: str, empty: str) -> str:
    """A two-column markdown table, or the empty message."""
    if not values:
        return f"**{title}**: {empty}"
    rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in sorted(values.items()))
    return f"**{title}**\n\n| metric | value |\n|---|---:|\n{rows}"


def pick(values: dict[str, float], words: tuple[str, ...]) -> dict[str, float]:
    """The metrics whose name contains one of words (case-insensitive)."""
    return {k: v for k, v in values.items() if any(w in k.lower() for w in words)}


def probe_tables_markdown(bundle: Bundle) -> str:
    """Seed 000's tables (per level, then cumulative) for every stored probe family."""
    probes = probes_of(bundle)
    keys = table_keys(bundle)
    if probes is None or not keys:
        return f"**Probe tables**: none — run `python training/probe.py {bundle.path}`"
    parts = []
    # seed 000's order: SVM per level, SVM cumulative, the MLP check, then the age-restricted tables
    for key in sorted(keys, key=lambda k: (k.startswith("age/"), "mlp" in k, "cumulative" in k, k)):
        table = probes.table(key)
        parts.append(f"**{key}** (held-out; {table.n_train} train / {table.n_test} test)\n\n"
                     + table.to_markdown("accuracy"))
    return "\n\n".join(parts)


def spectrum_figure(bundle: Bundle) -> Figure | None:
    """The explained-variance spectrum of every stored PCA basis, or None."""
    probes = probes_of(bundle)
    keys = pca_keys(bundle)
    if probes is None or not keys:
        return None
    return spectra({k: probes.meta["pca"][k]["var_ratio"] for k in keys})


def _log_dirs(bundle: Bundle) -> list[Path]:
    """Where a history may live: the bundle, its logs/, and the run folder around a '.../bundle'."""
    dirs = [bundle.path, bundle.path / "logs"]
    if bundle.path.name == "bundle":
        dirs += [bundle.path.parent, bundle.path.parent / "logs"]
    return [d for d in dirs if d.is_dir()]


def _tensorboard(folder: Path) -> dict[str, tuple[list[float], list[float]]]:
    events = sorted(folder.rglob("events.out.tfevents*"))
    if not events:
        return {}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, tuple[list[float], list[float]]] = {}
    for run in sorted({e.parent for e in events}):
        acc = EventAccumulator(str(run))
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            pts = acc.Scalars(tag)
            out[tag] = ([float(p.step) for p in pts], [float(p.value) for p in pts])
    return out


def _records(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".csv":
        with path.open(newline="") as fh:
            return list(csv.DictReader(fh))
    text = path.read_text()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    return data if isinstance(data, list) else []


def _series(records: list[dict[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    out: dict[str, tuple[list[float], list[float]]] = {}
    for i, rec in enumerate(records):
        step = float(rec.get("step", i))
        for k, v in rec.items():
            try:
                value = float(v)
            except (TypeError, ValueError):
                continue
            if k != "step":
                out.setdefault(k, ([], []))
                out[k][0].append(step)
                out[k][1].append(value)
    return out


def history(bundle: Bundle) -> tuple[dict[str, tuple[list[float], list[float]]], str]:
    """Scalar series by name and where they came from ({} and '' when the bundle carries none)."""
    for folder in _log_dirs(bundle):
        for name in HISTORY_FILES:
            if (folder / name).is_file():
                try:
                    series = _series(_records(folder / name))
                except (ValueError, OSError):
                    continue
                if series:
                    return series, str(folder / name)
    for folder in _log_dirs(bundle):
        series = _tensorboard(folder)
        if series:
            return series, f"TensorBoard events under {folder}"
    return {}, ""


def curves_figure(bundle: Bundle) -> tuple[Figure | None, str]:
    """Training curves (losses first) and a note; (None, reason) when the bundle has no history."""
    series, where = history(bundle)
    if not series:
        final = bundle.meta.get("final_losses") or {}
        last = ", ".join(f"{k} = {_fmt(float(v))}" for k, v in sorted(final.items())[:6])
        return None, ("No training curves: this bundle carries no logs/ or metrics history"
                      + (f" (final losses: {last})" if last else ""))
    order = sorted(series, key=lambda k: ("loss" not in k.lower(), k))
    return curves({k: series[k] for k in order}, f"training curves — {bundle.name}"), f"from {where}"


def summary_markdown(bundle: Bundle) -> str:
    """Model kind, data, size and training summary."""
    meta, model = bundle.meta, bundle.model
    train = meta.get("training") or {}
    levels = ", ".join(f"{s.name} {tuple(s.shape)}" for s in model.latent_levels)
    return (f"### {bundle.name}\n"
            f"- model: **{model.kind}**, {model.image_size}×{model.image_size} px; latent levels: {levels}\n"
            f"- data: {meta.get('dataset', '?')} (background: {meta.get('background', '?')})\n"
            f"- training: {train.get('steps', '?')} steps, {train.get('seconds', '?')} s on "
            f"{train.get('device', '?')}\n- source: `{bundle.source}`")
