"""The Results tab: what a bundle knows about itself — metrics, probe tables, PCA spectrum, curves, samples.

Metrics come from facelab.json ("metrics") and metrics.json (training/evaluate.py), probe tables and
PCA bases from probes/ (training/probe.py), training curves from TensorBoard event files or a JSON-lines
/CSV history in the bundle (or the run folder around it). Anything missing is said, not faked.
Every file read here must really lie inside the bundle (or, for curves, inside the training run folder
around a local '.../bundle'): a link pointing elsewhere is skipped, never read or served.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facelab.bundle_files import contained_file, real_roots
from facelab.hub import Bundle
from facelab.lab.plots import curves, spectra
from facelab.lab.probes import pca_keys, probes_of, table_keys

if TYPE_CHECKING:  # matplotlib loads only when a figure is drawn: ~1 s off the app's cold start
    from matplotlib.figure import Figure


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
    path = bundle.file("metrics.json")
    try:
        data = json.loads(path.read_text()) if path is not None else {}
    except (ValueError, OSError):
        return {"notes": {"metrics.json": "unreadable (not valid JSON)"}}
    return data if isinstance(data, dict) else {}


def metric_notes(bundle: Bundle) -> list[str]:
    """training/evaluate.py's notes (what was skipped and why)."""
    notes = _metrics_file(bundle).get("notes") or {}
    return [f"{k}: {v}" for k, v in sorted(notes.items())] if isinstance(notes, dict) else []


def _fmt(v: float) -> str:
    return "—" if math.isnan(v) else (f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}")


def _shown(key: str, v: float) -> str:
    """A metric as the tables show it: a spread of ~0 (older bundles' KID std over subsets that were the
    whole set) is no spread at all, so it reads "— (no spread: n too small)", not 3e-16."""
    if key.endswith("_std") and abs(v) < 1e-9:
        return "— (no spread: n too small)"
    return _fmt(v)


def metrics_markdown(values: dict[str, float], title: str, empty: str) -> str:
    """A two-column markdown table, or the empty message."""
    if not values:
        return f"**{title}**: {empty}"
    rows = "\n".join(f"| {k} | {_shown(k, v)} |" for k, v in sorted(values.items()))
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


RUN_CONFIG = "config.yaml"  # training/train.py writes it into the run folder around '.../bundle'
Place = tuple[Path, tuple[Path, ...]]  # a folder to search, and the real folders its files must lie in


def _log_dirs(bundle: Bundle) -> list[Place]:
    """Where a history may live: the bundle, its logs/, and a local training run folder around '.../bundle'."""
    roots = bundle.roots or real_roots(bundle.path)
    places = [(bundle.path, roots), (bundle.path / "logs", roots)]
    run = bundle.path.parent
    # only a run folder train.py wrote: a bundle unpacked as ~/bundle must not make facelab read all of ~
    if bundle.path.name == "bundle" and (run / RUN_CONFIG).is_file():
        run_roots = real_roots(run)
        places += [(run, run_roots), (run / "logs", run_roots)]
    return [(d, r) for d, r in places if d.is_dir()]


def _tensorboard(folder: Path, roots: tuple[Path, ...]) -> dict[str, tuple[list[float], list[float]]]:
    events = [e for e in sorted(folder.rglob("events.out.tfevents*")) if contained_file(e, roots)]
    if not events:
        return {}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, tuple[list[float], list[float]]] = {}
    for event_file in events:  # file by file: a run folder may also hold event files facelab must not read
        acc = EventAccumulator(str(event_file))
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            steps, values = out.setdefault(tag, ([], []))
            for p in acc.Scalars(tag):
                steps.append(float(p.step))
                values.append(float(p.value))
    return {tag: _by_step(*series) for tag, series in out.items()}


def _by_step(steps: list[float], values: list[float]) -> tuple[list[float], list[float]]:
    order = sorted(range(len(steps)), key=steps.__getitem__)
    return [steps[i] for i in order], [values[i] for i in order]


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
    places = _log_dirs(bundle)
    for folder, roots in places:
        for name in HISTORY_FILES:
            path = contained_file(folder / name, roots)
            if path is not None:
                try:
                    series = _series(_records(path))
                except (ValueError, OSError):
                    continue
                if series:
                    return series, str(path)
    for folder, roots in places:
        series = _tensorboard(folder, roots)
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
