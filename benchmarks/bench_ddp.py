#!/usr/bin/env python
"""Two cores, two ways: one training process with 2 threads vs 2-process DDP with 1 thread each.

    python benchmarks/bench_ddp.py                                   # VAE and DCGAN presets
    python benchmarks/bench_ddp.py --presets vae_synthfaces64 --steps 40 --rounds 1

Each run is the real command a user types — `python training/train.py --config PRESET` with
OMP_NUM_THREADS=2, or `accelerate launch --multi_gpu --num_processes 2 training/train.py ...` with
OMP_NUM_THREADS=1 (DDP over gloo on CPU), same global batch — for a fixed number of steps, without
sample grids, checkpoints or torch.compile (its one-off compile would dominate a short run). Images/s is images seen over the training loop's own seconds, read from
the bundle's facelab.json (start-up and the final bundle are left out). The two layouts alternate
round by round, so load drifting during the run hits both. Needs both cores free to mean anything.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = {"1 process × 2 threads": (1, 2), "2 processes × 1 thread (DDP, gloo)": (2, 1)}


def run_once(preset: str, procs: int, threads: int, steps: int, out: Path) -> float:
    """Train preset for steps in the given layout; images per second of the training loop."""
    train = ["training/train.py", "--config", f"training/configs/{preset}.yaml", "--set", f"train.max_steps={steps}",
             f"train.output_dir={out}", "train.report_to=none", "train.sample_every=0", "train.checkpoint_every=0",
             "train.log_every=10", "train.compile=false"]  # a one-off compile would swamp a short run
    launch = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(procs)] if procs > 1 else []
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "true"}
    done = subprocess.run([sys.executable, *launch, *train], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{preset} with {procs} process(es) failed:\n{done.stderr[-1500:]}")
    meta = json.loads((out / "bundle" / "facelab.json").read_text())["training"]
    if meta["num_processes"] != procs:
        raise RuntimeError(f"asked for {procs} processes, the run reports {meta['num_processes']}")
    return meta["images_seen"] / meta["seconds"]


def main(argv: list[str] | None = None) -> int:
    """Alternate both layouts per preset for --rounds; print a markdown table of medians."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--presets", nargs="+", default=["vae_synthfaces64", "dcgan_synthfaces32_cpu"])
    p.add_argument("--steps", type=int, default=60, help="training steps per run (default 60)")
    p.add_argument("--rounds", type=int, default=2, help="runs per layout, alternating (default 2)")
    args = p.parse_args(argv)
    print(f"training images/s over {args.steps} steps, median of {args.rounds} alternating runs; "
          f"load average at the start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| preset | layout | images/s | × 1 process |")
    print("|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            rates: dict[str, list[float]] = {name: [] for name in LAYOUTS}
            for r in range(args.rounds):
                for name, (procs, threads) in LAYOUTS.items():
                    rates[name].append(run_once(preset, procs, threads, args.steps, Path(tmp) / f"{preset}-{procs}-{r}"))
            base = statistics.median(next(iter(rates.values())))
            for name, values in rates.items():
                ips = statistics.median(values)
                print(f"| {preset} | {name} | {ips:.1f} | {ips / base:.2f}× |", flush=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
