"""Throughput of synthfaces on one CPU core; prints a markdown table (goal: >= 1,000 images/s at 64x64).

    python benchmarks/bench_synthfaces.py [--sizes 32 64 128 256] [--batches 1 64 256] [--images 2048]

"render" times facelab.data.synthfaces.render (uint8 images + masks); "dataset" times
SynthFaces.__getitems__, the path torch's DataLoader takes (factors, render, tensors, dicts).
Both wall-clock and this process's CPU time are reported: on a shared, busy machine the
wall-clock rate falls with the load while the CPU-time rate stays close to an idle core's.
"""

from __future__ import annotations

import os

# One core means one thread everywhere, BLAS included (the noise background uses matmul).
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from facelab.data.synthfaces import SynthFaces, render, sample_factors  # noqa: E402

GOAL = 1000.0


def images_per_second(step: Callable[[int], None], batch: int, total: int,
                      repeats: int = 3) -> tuple[float, float]:
    """Best-of-repeats (wall, CPU-time) throughput of step(start) on consecutive batches up to total."""
    step(0)  # warm caches and allocator
    wall = cpu = float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        for s in range(0, total, batch):
            step(s)
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return total / wall, total / cpu


def reference_ns_per_element(repeats: int = 50) -> float:
    """ns per element of a float32 numpy multiply on [64,64,64]: a yardstick for how busy the core is."""
    a = np.random.default_rng(0).random((64, 64, 64), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.multiply(a, 1.0001, out=a)
        best = min(best, time.perf_counter() - start)
    return best / a.size * 1e9


def bench(sizes: list[int], batches: list[int], images: int) -> list[tuple[str, int, int, float, float]]:
    """Rows (path, size, batch, wall images/s, CPU-time images/s) for render and the dataset path."""
    rows = []
    factors = sample_factors(np.random.default_rng(0), max(batches))
    for size in sizes:
        total = max(64, images * 64 * 64 // (size * size))
        ds = SynthFaces(size=size, length=10**9, seed=0)
        for batch in sorted({min(b, total) for b in batches}):
            n = batch
            count = total if n >= 16 else min(total, 64 * n)  # one-image calls are slow: time fewer
            rates = images_per_second(lambda s: render(factors[:n], size, np.arange(s, s + n)), n, count)
            rows.append(("render", size, n, *rates))
            rates = images_per_second(lambda s: ds.__getitems__(list(range(s, s + n))), n, count)
            rows.append(("dataset", size, n, *rates))
    return rows


def main() -> None:
    """Parse arguments, run on one thread, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--images", type=int, default=2048, help="images per timing at 64 px (scaled by area)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    before = reference_ns_per_element()
    rows = bench(args.sizes, args.batches, args.images)
    after = reference_ns_per_element()
    print(f"synthfaces throughput, 1 thread, {platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}, torch {torch.__version__}\n")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; yardstick "
          f"(float32 multiply) {before:.2f} / {after:.2f} ns per element before / after\n")
    print("| path | size | batch | images/s (wall) | images/s (CPU time) |")
    print("|---|---:|---:|---:|---:|")
    for path, size, batch, wall, cpu in rows:
        print(f"| {path} | {size} | {batch} | {wall:,.0f} | {cpu:,.0f} |")
    best64 = max((w for p, s, b, w, c in rows if s == 64), default=0.0)
    if 64 in args.sizes:
        verdict = "met" if best64 >= GOAL else "NOT met"
        print(f"\nbest wall-clock rate at 64x64: {best64:,.0f} images/s — goal {GOAL:,.0f}: {verdict}")


if __name__ == "__main__":
    main()
