#!/usr/bin/env python
"""StyleGAN behaviour figures for BENCHMARKS.md: truncation ψ rows and coarse vs fine style mixing.

    python benchmarks/stylegan_figures.py assets/stylegan32_original --out benchmarks/figures

Writes <name>_truncation.png (one column per seed, one row per ψ: ψ = 0 is the average face,
ψ = 1 the untruncated sample) and <name>_mix_coarse.png / <name>_mix_fine.png (the app's style
mixing figure: rows keep their styles except the coarse (4-8 px) or fine (16 px and up) layers,
taken from the column faces), upscaled with nearest neighbour so 32-px faces can be seen. Prints
a markdown table of the mean pixel change each mix makes against the row faces, and the sample
variety (mean pairwise distance) at each ψ — numbers for what the pictures show.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facelab.imaging import grid  # noqa: E402
from facelab.lab import FaceLab  # noqa: E402
from facelab.lab.latents import sample_images  # noqa: E402
from facelab.lab.style import style_mix  # noqa: E402

PSIS = (0.0, 0.25, 0.5, 0.75, 1.0)


def upscale(img: Image.Image, factor: int) -> Image.Image:
    """Nearest-neighbour upscale: small faces visible without blurring their pixels."""
    return img.resize((img.width * factor, img.height * factor), Image.NEAREST)


def variety(images: torch.Tensor) -> float:
    """Mean pairwise RMS distance between images in [-1, 1] (0 = all alike)."""
    flat = images.flatten(1).double()
    d = torch.cdist(flat, flat) / flat.shape[1] ** 0.5
    n = len(flat)
    return float(d.sum() / (n * (n - 1)))


def truncation_figure(lab: FaceLab, name: str, seeds: list[int], out: Path, factor: int) -> list[str]:
    """Rows ψ ∈ PSIS, columns seeds; returns table rows ψ → variety."""
    b = lab.bundle(name)
    rows, table = [], []
    for psi in PSIS:
        imgs = torch.cat([sample_images(b, 1, s, 1.0, psi) for s in seeds])
        rows.append(imgs)
        many = sample_images(b, 64, 1000, 1.0, psi)
        table.append(f"| ψ = {psi:g} | {variety(many):.3f} |")
    upscale(grid(torch.cat(rows), nrow=len(seeds)), factor).save(out)
    return table


def mixing_figures(lab: FaceLab, name: str, out_dir: Path, factor: int) -> list[str]:
    """Coarse and fine mixes (the app's figure); returns table rows of mean change vs row faces."""
    b = lab.bundle(name)
    n = int(b.model.num_ws)
    coarse = 4  # w inputs 0..3 drive the 4 and 8 px layers (const conv, toRGB, 8-px convs)
    row_seeds, col_seeds = [1, 2, 3, 4], [5, 6, 7, 8, 9]
    table = []
    for tag, (first, last) in {"coarse": (0, coarse - 1), "fine": (coarse, n - 1)}.items():
        fig, _ = lab.style_mix(name, row_seeds, col_seeds, first, last)
        upscale(fig, factor).save(out_dir / f"{name}_mix_{tag}.png")
        rows, cols, mixed = style_mix(b, row_seeds, col_seeds, range(first, last + 1))
        mixed = mixed.view(len(row_seeds), len(col_seeds), *mixed.shape[1:])
        to_row = (mixed - rows[:, None]).abs().mean().item()
        to_col = (mixed - cols[None]).abs().mean().item()
        table.append(f"| {tag} (w {first}–{last}) from columns | {to_row:.3f} | {to_col:.3f} |")
    return table


def main(argv: list[str] | None = None) -> int:
    """Write the figures for each bundle and print the tables."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundles", nargs="+")
    p.add_argument("--out", default="benchmarks/figures")
    p.add_argument("--upscale", type=int, default=3)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lab = FaceLab(model_sources=list(args.bundles), device="cpu")
    for name in lab.model_names("stylegan"):
        print(f"\n### {name}\n\n| ψ | sample variety (mean pairwise RMS) |\n|---|---:|")
        print("\n".join(truncation_figure(lab, name, list(range(8)), out / f"{name}_truncation.png",
                                          args.upscale)))
        print("\n| mix | mean |change| vs row face | vs column face |\n|---|---:|---:|")
        print("\n".join(mixing_figures(lab, name, out, args.upscale)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
