#!/usr/bin/env python
"""Hierarchical-VAE figures for BENCHMARKS.md: what each level's temperature changes.

    python benchmarks/hvae_figures.py assets/hvae_synthfaces64 --out benchmarks/figures

Writes <name>_level_temperature.png: one row per latent level k, one column per seed; every level
is drawn at temperature 0 (its prior mean given the levels above) except level k, drawn at --t
(the app's per-level temperature sliders set this way). A top row has every level at 0: the face
each row departs from. Also <name>_level_resample.png: the first column is a sample; in row k,
levels 0..k keep that sample's values and the finer ones are redrawn at --t (seed 000's frozen
levels). Prints a markdown table of how much each level moves the image (mean pairwise RMS
distance among the row's faces) and which attributes it changes (the attribute classifier's
flip rate against the T = 0 face), numbers for what the pictures show.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facelab.hub import load_bundle  # noqa: E402
from facelab.imaging import grid  # noqa: E402
from facelab.models.classifier import load_attribute_classifier  # noqa: E402


def upscale(img: Image.Image, factor: int) -> Image.Image:
    """Nearest-neighbour upscale so that small faces can be seen."""
    return img.resize((img.width * factor, img.height * factor), Image.NEAREST)


def variety(images: torch.Tensor) -> float:
    """Mean pairwise RMS distance between images in [-1, 1] (0 = all alike)."""
    flat = images.flatten(1).double()
    n = len(flat)
    return float((torch.cdist(flat, flat) / flat.shape[1] ** 0.5).sum() / (n * (n - 1)))


def one_level_hot(model, k: int, t: float, n: int, seed: int) -> torch.Tensor:
    """n samples with every level at temperature 0 except level k at t."""
    temps = [0.0] * len(model.latent_levels)
    temps[k] = t
    return model.sample(n, temperature=temps, generator=torch.Generator().manual_seed(seed)).float()


def flip_rates(judge, base: torch.Tensor, images: torch.Tensor, names: list[str]) -> dict[str, float]:
    """Share of images whose judged attribute differs from the base face's, per attribute."""
    ref = judge.predict(base)[0] > 0.5
    got = judge.predict(images) > 0.5
    return {a: float((got[:, i] != ref[i]).float().mean()) for i, a in enumerate(names)}


def temperature_figure(model, seeds: int, t: float, out: Path, factor: int, judge) -> list[str]:
    """Rows: all levels at 0, then level k alone at t; returns the table rows."""
    levels = [s.name for s in model.latent_levels]
    base = model.sample(seeds, temperature=0.0).float()
    rows, table = [base], []
    for k, name in enumerate(levels):
        rows.append(one_level_hot(model, k, t, seeds, seed=k))
        many = one_level_hot(model, k, t, 64, seed=1000 + k)
        flips = flip_rates(judge, base[:1], many, list(judge.attribute_names)) if judge else {}
        top = ", ".join(f"{a} {v:.2f}" for a, v in sorted(flips.items(), key=lambda x: -x[1])[:3] if v > 0)
        shape = "×".join(map(str, model.latent_levels[k].shape))
        table.append(f"| {name} ({shape}) | {variety(many):.3f} | {top or '—'} |")
    upscale(grid(torch.cat(rows), nrow=seeds), factor).save(out)
    return table


def resample_figure(model, seeds: int, t: float, out: Path, factor: int) -> None:
    """Row k: levels 0..k of one sample kept, the finer levels redrawn at t (first column: the sample)."""
    g = torch.Generator().manual_seed(0)
    face, zs = model.sample(1, temperature=t, generator=g, return_latents=True)
    rows = []
    for k in range(len(zs)):
        fixed = {j: zs[j] for j in range(k + 1)}
        rest = model.sample(seeds - 1, temperature=t, generator=torch.Generator().manual_seed(100 + k),
                            fixed=fixed).float()
        rows.append(torch.cat([face.float(), rest]))
    upscale(grid(torch.cat(rows), nrow=seeds), factor).save(out)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, write both figures, print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("bundle")
    p.add_argument("--out", default="benchmarks/figures")
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--t", type=float, default=1.0, help="temperature of the level(s) drawn")
    p.add_argument("--factor", type=int, default=2, help="nearest-neighbour upscale of the figure")
    p.add_argument("--judge", default=str(Path(__file__).resolve().parents[1] / "assets" / "attribute_classifier"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    bundle = load_bundle(args.bundle)
    if bundle.model.kind != "hvae":
        raise SystemExit(f"{args.bundle} is a {bundle.model.kind}, not a hierarchical VAE")
    judge = load_attribute_classifier(args.judge) if args.judge else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = Path(args.bundle).name
    with torch.no_grad():
        table = temperature_figure(bundle.model, args.seeds, args.t, out / f"{name}_level_temperature.png",
                                   args.factor, judge)
        resample_figure(bundle.model, args.seeds, args.t, out / f"{name}_level_resample.png", args.factor)
    print(f"| level alone at T = {args.t:g} (others at 0) | variety | attributes it flips (share of 64) |")
    print("|---|---:|---|")
    print("\n".join(table))


if __name__ == "__main__":
    main()
