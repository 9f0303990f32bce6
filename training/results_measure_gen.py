"""Seed 004's generative measurements for RESULTS.md: mode-collapse check (PRDC) and training curves.

Used by training/results_measure.py (`coverage`, `curves`); kept apart so each file holds one concern.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
CLASSIFIER = "assets/attribute_classifier"
COVERAGE_BUNDLES = ("assets/vae_synthfaces64", "assets/vae32_original", "assets/dcgan32",
                    "assets/stylegan32_original", "assets/vae32_grey", "assets/stylegan32_grey",
                    "assets/adagvae_synthfaces64", "assets/hvae_synthfaces64", "assets/cvae_synthfaces64",
                    "assets/vae32_blur", "assets/stylegan32_blur")
CURVE_RUNS = {"dcgan32": "runs/dcgan32_cpu", "stylegan32_original": "runs/stylegan32_original",
              "stylegan32_grey": "runs/stylegan32_grey", "cvae64": "runs/cvae_synthfaces64",
              "hvae64": "runs/hvae_synthfaces64_cpu"}


# ---------------------------------------------------------------- seed 004: mode collapse, curves


def _knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each row to its k-th nearest other row."""
    d = torch.cdist(x, x)
    d.fill_diagonal_(float("inf"))
    return d.kthvalue(k, dim=1).values


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> dict[str, float]:
    """Precision, recall, density, coverage (Naeem et al. 2020) and nearest-neighbour distances."""
    r_real, r_fake = _knn_radii(real, k), _knn_radii(fake, k)
    d = torch.cdist(real, fake)  # [R, F]
    precision = (d <= r_real[:, None]).any(0).float().mean()
    recall = (d <= r_fake[None, :]).any(1).float().mean()
    density = (d <= r_real[:, None]).float().sum(0).mean() / k
    coverage = (d.min(1).values <= r_real).float().mean()
    nn_real, nn_fake = _knn_radii(real, 1).median(), _knn_radii(fake, 1).median()
    return {"precision": float(precision), "recall": float(recall), "density": float(density),
            "coverage": float(coverage), "k": k, "nn_real_median": float(nn_real),
            "nn_fake_median": float(nn_fake), "nn_ratio": float(nn_fake / nn_real),
            "fake_closer_than_any_real_pair": float((_knn_radii(fake, 1) < _knn_radii(real, 1).min()).float().mean())}


def measure_coverage(folders: tuple[str, ...] = COVERAGE_BUNDLES, n: int = 1000) -> dict[str, Any]:
    """Samples of each bundle vs held-out faces of its variant and size, in the attribute classifier's features."""
    from facelab.hub import load_bundle
    from facelab.models.classifier import load_attribute_classifier
    from facelab.metrics.fid_protocol import PROTOCOL_SEED, generated_images, real_images

    judge = load_attribute_classifier(ROOT / CLASSIFIER)
    reals: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    rows = {}
    for folder in folders:
        if not (ROOT / folder / "config.json").is_file():
            continue
        bundle = load_bundle(str(ROOT / folder))
        model = bundle.model.eval()
        size, background = int(model.image_size), bundle.meta.get("background") or "original"
        if (size, background) not in reals:
            images, labels = real_images(size, background, n, 0)
            reals[(size, background)] = (judge.features(images), judge.predict(images), labels)
        feats, probs, labels = reals[(size, background)]
        fake = generated_images(model, n, size, labels)
        f_feats, f_probs = judge.features(fake), judge.predict(fake)
        names = list(judge.attribute_names)
        rows[bundle.meta.get("name") or Path(folder).name] = {
            "bundle": folder, "kind": bundle.meta.get("kind"), "image_size": size, "background": background,
            "steps": (bundle.meta.get("training") or {}).get("steps"),
            **prdc(feats, f_feats),
            "prevalence_generated": dict(zip(names, (f_probs > 0.5).float().mean(0).tolist())),
            "prevalence_real_judged": dict(zip(names, (probs > 0.5).float().mean(0).tolist()))}
        print(folder, {k: round(v, 3) for k, v in rows[list(rows)[-1]].items() if isinstance(v, float)}, flush=True)
    return {"n": n, "seed": PROTOCOL_SEED, "features": f"{CLASSIFIER} penultimate features (256-d)",
            "reals": "held-out synthfaces (test split, items 0..n-1) of each bundle's size and background",
            "bundles": rows}


def _downsample(steps: list[float], values: list[float], keep: int = 200) -> tuple[list[int], list[float]]:
    """At most `keep` points: means over equal step windows (the raw logs have one point per 50 steps)."""
    if len(steps) <= keep:
        return [int(s) for s in steps], [float(v) for v in values]
    edges = np.linspace(0, len(steps), keep + 1).astype(int)
    return ([int(steps[b - 1]) for b in edges[1:]],
            [float(np.mean(values[a:b])) for a, b in zip(edges[:-1], edges[1:])])


def measure_curves(runs: dict[str, str] = CURVE_RUNS) -> dict[str, Any]:
    """Scalar training curves from each run folder's TensorBoard events (the last write of each step wins)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = {}
    for name, folder in runs.items():
        events = sorted((ROOT / folder).rglob("events.out.tfevents*"))
        series: dict[str, dict[int, float]] = {}
        for event_file in events:  # resumed runs write a second file: later files override earlier steps
            acc = EventAccumulator(str(event_file), size_guidance={"scalars": 0})
            acc.Reload()
            for tag in acc.Tags().get("scalars", []):
                series.setdefault(tag, {}).update({int(e.step): float(e.value) for e in acc.Scalars(tag)})
        if series:
            out[name] = {"run": folder, "tags": {}}
            for tag, points in sorted(series.items()):
                steps = sorted(points)
                s, v = _downsample(steps, [points[k] for k in steps])
                out[name]["tags"][tag] = {"steps": s, "values": v}
    return {"runs": out, "note": "run folders are not shipped (runs/ is git-ignored); this file keeps their curves"}
