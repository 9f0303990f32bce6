"""RESULTS.md's figures: plots of saved numbers (matplotlib) and composites of shipped images (PIL).

Byte-identical on a rerun: matplotlib's Agg output without its Software/date metadata, PIL PNGs
without timestamps, inputs read in sorted order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from training.results_inputs import BundleFiles  # noqa: E402

PNG_META = {"Software": None}  # matplotlib would stamp its version: same page, different bytes across installs


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata=PNG_META)
    plt.close(fig)
    return path


def study_image(path: Path) -> Path | None:
    """A study's own image in results/data (linked in place, not copied: the repo keeps one copy)."""
    return path if path.is_file() else None


def levels_figure(seed: dict[str, Any], facelab: dict[str, list[float]], path: Path) -> Path:
    """Seed 000: gender accuracy per latent level — the seed's SVM scores beside facelab's HVAE."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for key, style, label in (("cumulative", "o-", "seed 000, levels 1..k"), ("per_level", "s--", "seed 000, level k alone"),
                              ("age_restricted", "^:", "seed 000, over 15, levels 1..k")):
        if seed.get(key):
            ax.plot(seed[key]["levels"], seed[key]["svm"], style, color="grey", label=label)
    colours = {"cumulative": "tab:blue", "per_level": "tab:orange", "age_cumulative": "tab:green",
               "age_per_level": "tab:red"}
    for key, values in facelab.items():
        ax.plot(range(1, len(values) + 1), values, "o-", color=colours.get(key, "k"), label=f"facelab HVAE, {key}")
    ax.set_xticks(seed["cumulative"]["levels"] if seed.get("cumulative") else [])
    ax.set_xlabel("latent level k")
    ax.set_ylabel("held-out accuracy (Male)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def pca_figure(spectra: dict[str, Sequence[float]], path: Path) -> Path:
    """Seed 002: cumulative explained variance of each bundle's latent PCA (probes.json)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for label, ratios in spectra.items():
        total, cum = 0.0, []
        for r in ratios:
            total += float(r)
            cum.append(total)
        ax.plot(range(1, len(cum) + 1), cum, "-" if "original" in label else "--", label=label)
    ax.set_xlabel("principal components")
    ax.set_ylabel("cumulative share of latent variance")
    ax.set_xscale("log")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def sweep_figure(sweep: dict[str, Any], schedules: dict[str, Any], path: Path) -> Path:
    """Seed 003: reconstruction vs disentanglement per β (left), β in the loss per step and schedule (right)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.6))
    for group, marker in (("unsupervised", "o"), ("weakly_supervised", "s")):
        rows = sweep.get(group) or []
        left.scatter([r["recon_mse"] for r in rows], [r["beta_vae"] for r in rows], marker=marker,
                     label=group.replace("_", " "))
        for r in rows:
            left.annotate(f"β={r['beta']:g}", (r["recon_mse"], r["beta_vae"]), fontsize=6,
                          xytext=(3, 3), textcoords="offset points")
    left.set_xlabel("reconstruction MSE (held out)")
    left.set_ylabel("β-VAE metric")
    left.legend(fontsize=7)
    left.grid(alpha=0.3)
    for kind, entry in sorted((schedules.get("schedules") or {}).items()):
        if kind == "capacity":
            continue  # its weight is γ (1000), not a β: it would flatten the other curves
        rows = entry["rows"]
        right.plot([r["step"] for r in rows], [r["kl_weight_in_loss"] for r in rows], "o-", label=kind)
    right.set_xlabel("training step")
    right.set_ylabel("KL weight read back from the loss")
    right.legend(fontsize=7)
    right.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def curves_figure(runs: dict[str, Any], path: Path, tags: Sequence[str] = ("g_loss", "d_loss")) -> Path | None:
    """Seed 004: generator and discriminator losses of each saved run."""
    runs = {k: v for k, v in sorted(runs.items()) if any(t in v.get("tags", {}) for t in tags)}
    if not runs:
        return None
    fig, axes = plt.subplots(1, len(tags), figsize=(4.8 * len(tags), 3.4), squeeze=False)
    for ax, tag in zip(axes[0], tags):
        for name, run in runs.items():
            series = run["tags"].get(tag)
            if series:
                ax.plot(series["steps"], series["values"], label=name)
        ax.set_title(tag, fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def samples_figure(bundles: Sequence[BundleFiles], path: Path, height: int = 200) -> Path | None:
    """Shipped samples.png side by side (scaled to one height), each captioned with its bundle name."""
    shown = [b for b in bundles if b.samples is not None]
    if not shown:
        return None
    tiles = []
    for b in shown:
        im = Image.open(b.samples).convert("RGB")
        width = round(im.width * height / im.height)
        tiles.append((b.name + (" (early run)" if b.early else ""), im.resize((width, height), Image.LANCZOS)))
    caption, pad = 16, 6
    canvas = Image.new("RGB", (sum(t.width for _, t in tiles) + pad * (len(tiles) + 1), height + caption + pad),
                       (255, 255, 255))
    draw, x = ImageDraw.Draw(canvas), pad
    for name, tile in tiles:
        draw.text((x, 2), name, fill=(0, 0, 0))
        canvas.paste(tile, (x, caption))
        x += tile.width + pad
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, optimize=True)
    return path
