#!/usr/bin/env python
"""Background share of latent variance, original vs grey backgrounds, over several training seeds.

    .venv/bin/python benchmarks/bench_background_share.py --seeds 0 1 2 --size 32 --steps 1200

Seed 002 could only hint, from PCA eigenvalues, that background removal frees latent capacity for
the face. facelab measures it: the share of latent variance explained by the background factors
(facelab.metrics.background, R² of each PCA component on bg_kind and bg_colour, weighted by its
variance ratio). This script trains one VAE per (background, seed) with training/train.py — the
same preset, only train.seed and data.background change — into OUT/<background>_s<seed>/ (a run
whose bundle already exists is reused, so an interrupted study resumes), then measures every
bundle on its own background's test faces (and each grey-trained bundle on original faces too:
does its encoder ignore a background it never saw?) and prints a markdown table: per run the share and its
bg_colour / bg_kind parts, then mean ± standard deviation per background and the paired gap.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from facelab.hub import load_bundle  # noqa: E402
from facelab.metrics.evaluate import EvalSettings, background_metrics  # noqa: E402

PRESET = ROOT / "training" / "configs" / "vae_synthfaces64.yaml"


def train_run(out: Path, background: str, seed: int, size: int, steps: int, latent: int) -> Path:
    """Train (or reuse) one VAE run; returns its bundle folder."""
    bundle = out / f"{background}_s{seed}" / "bundle"
    if (bundle / "facelab.json").is_file():
        return bundle
    sets = [f"data.background={background}", f"data.image_size={size}", f"model.params.latent_dim={latent}",
            f"train.seed={seed}", f"train.max_steps={steps}", f"train.output_dir={bundle.parent}",
            "train.report_to=none", f"train.checkpoint_every={max(steps // 3, 1)}",
            f"train.sample_every={steps}"]
    cmd = [sys.executable, str(ROOT / "training" / "train.py"), "--config", str(PRESET), "--set", *sets]
    if (bundle.parent / "checkpoints").is_dir():
        cmd += ["--resume", "latest"]
    print("training", background, "seed", seed, flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return bundle


def measure(bundle: Path, n: int, background: str | None = None) -> dict[str, float]:
    """Background share of one bundle on n test faces of its own background (or the one given)."""
    from facelab.data.build import build_dataset

    b = load_bundle(str(bundle))
    data_cfg = b.meta["run_config"]["data"]
    dataset = build_dataset(data_cfg["name"], size=data_cfg["image_size"], split="test",
                            background=background or data_cfg["background"], length=n, seed=data_cfg["seed"])
    flat, _ = background_metrics(b.model.eval(), dataset, EvalSettings(n=n))
    return flat


def table(results: dict[tuple[str, int], dict[str, float]], seeds: list[int]) -> list[str]:
    """Markdown lines: per run, then mean ± std per background, then the paired gap."""
    lines = ["| background | seed | share | bg_colour part | bg_kind part |", "|---|---:|---:|---:|---:|"]
    for (bg, seed), r in sorted(results.items()):
        if "→" in bg:
            continue
        lines.append(f"| {bg} | {seed} | {r['background_share']:.3f} | {r['background_share_bg_colour']:.3f} "
                     f"| {r['background_share_bg_kind']:.3f} |")
    shares = {bg: np.array([results[(bg, s)]["background_share"] for s in seeds]) for bg in ("original", "grey")}
    for bg, v in shares.items():
        lines.append(f"| **{bg}, mean ± std** | {len(v)} seeds | **{v.mean():.3f} ± {v.std(ddof=1):.3f}** | | |")
    gap = shares["original"] - shares["grey"]
    lines.append(f"| **original − grey (paired by seed)** | | **{gap.mean():.3f} ± {gap.std(ddof=1):.3f}** "
                 f"(min {gap.min():.3f}) | | |")
    if all(("grey→original", s) in results for s in seeds):
        v = np.array([results[("grey→original", s)]["background_share"] for s in seeds])
        lines.append(f"| **grey-trained, on original faces** | {len(v)} seeds | **{v.mean():.3f} ± {v.std(ddof=1):.3f}** "
                     "| | |")
    return lines


def main(argv: list[str] | None = None) -> None:
    """Train what is missing, measure every run, print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--latent-dim", type=int, default=32)
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--n", type=int, default=2000, help="test faces per measurement")
    p.add_argument("--out", default=str(ROOT / "runs" / "background_share"))
    args = p.parse_args(argv)
    if len(args.seeds) < 2:
        raise SystemExit("a spread needs at least two seeds")
    out = Path(args.out)
    results = {}
    for seed in args.seeds:
        for bg in ("original", "grey"):
            bundle = train_run(out, bg, seed, args.size, args.steps, args.latent_dim)
            results[(bg, seed)] = measure(bundle, args.n)
            print(bg, seed, f"{results[(bg, seed)]['background_share']:.3f}", flush=True)
        # does a grey-trained encoder ignore a background when one is there? (its inputs never had one)
        results[("grey→original", seed)] = measure(out / f"grey_s{seed}" / "bundle", args.n, "original")
    print(f"\nsynthfaces {args.size} px, VAE latent {args.latent_dim}, {args.steps} steps, {args.n} test faces\n")
    print("\n".join(table(results, args.seeds)))


if __name__ == "__main__":
    main()
