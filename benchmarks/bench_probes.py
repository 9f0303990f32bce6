"""Probe fitting speed at seed 000's scale: per-level + cumulative linear SVMs on 70,000 × 800 latents.

Seed 000 fitted sklearn SVMs on 70,000 VD-VAE latents of FFHQ (5 levels: 16, 16, 256, 256, 256
dimensions), 80/20 split, on each level and on levels 1..k. The latents here are synthetic with
that shape (correlated dimensions, attribute signal growing with depth, about 0.8 held-out accuracy
like the seed's gender SVM); real VD-VAE latents are not available offline.

Solvers, same split and standardisation, same objective (LinearSVC's squared hinge, C = 1):
  newton     facelab's batched truncated-Newton solver in float32 torch (all attributes at once)
  liblinear  sklearn LinearSVC(dual=False), one attribute at a time (the reference)
  sgd        sklearn SGDClassifier(hinge, 5 epochs, averaged): the cheap alternative considered

Prints two markdown tables: solvers on one attribute (wall and CPU time, mean accuracy, max gap to
liblinear), and the newton solver's time for several attributes at once. CPU time counts every
thread, so on an idle machine wall ≈ CPU / threads for the torch solver and wall ≈ CPU for the
single-threaded sklearn ones; the load average is printed because other jobs stretch wall times.

    .venv/bin/python benchmarks/bench_probes.py                  # full scale
    .venv/bin/python benchmarks/bench_probes.py --n 7000 --attributes 1,4 --solvers newton,liblinear
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# Shared machines: spinning OpenMP workers stall each other when cores are oversubscribed (a 2-thread
# torch matmul measured 5-70x slower under load); sleeping waits cost nothing when the machine is idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.linear_model import SGDClassifier  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from facelab.probes.classifiers import fit_level_probes  # noqa: E402


def make_latents(n: int, dims: list[int], n_attributes: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Synthetic per-level latents [n, d_k] and 0/1 labels [n, A] with seed 000's accuracy profile."""
    rng = np.random.default_rng(seed)
    d = sum(dims)
    # Low-rank shared factors + noise: latent dimensions are correlated, as posterior means are.
    x = rng.standard_normal((n, 64), dtype=np.float32) @ (0.3 * rng.standard_normal((64, d), dtype=np.float32))
    x += rng.standard_normal((n, d), dtype=np.float32)
    gain = np.concatenate([np.full(k, 0.2 + i, np.float32) for i, k in enumerate(dims)])
    labels = np.empty((n, n_attributes), np.int64)
    for a in range(n_attributes):  # one generator per attribute: attribute 0 is the same whatever the count
        arng = np.random.default_rng([seed, a])
        score = x @ (arng.standard_normal(d, dtype=np.float32) * gain)
        score = (score - score.mean()) / score.std()
        labels[:, a] = score + 0.9 * arng.standard_normal(n) > 0.4  # ~38 % positive
    return np.split(x, np.cumsum(dims)[:-1], axis=1), labels


def sgd_tables(levels: list[np.ndarray], labels: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Held-out accuracy [A, K] per mode with SGDClassifier(hinge), same split and scaling as facelab."""
    x = np.concatenate(levels, 1)
    train, test = train_test_split(np.arange(len(x)), test_size=0.2, random_state=seed)
    mean, std = x[train].mean(0), x[train].std(0)
    xtr, xte = (x[train] - mean) / std, (x[test] - mean) / std
    bounds = np.cumsum([0] + [lv.shape[1] for lv in levels])
    out = {}
    for mode in ("per_level", "cumulative"):
        acc = np.zeros((labels.shape[1], len(levels)))
        for k in range(len(levels)):
            cols = slice(bounds[k] if mode == "per_level" else 0, bounds[k + 1])
            for a in range(labels.shape[1]):
                clf = SGDClassifier(loss="hinge", max_iter=5, tol=None, average=True, random_state=seed)
                clf.fit(xtr[:, cols], labels[train, a])
                acc[a, k] = clf.score(xte[:, cols], labels[test, a])
        out[mode] = acc
    return out


def run_solver(solver: str, levels: list[np.ndarray], labels: np.ndarray) -> tuple[float, float, dict]:
    """Wall and CPU seconds (all threads) for both tables, and the tables (accuracy arrays for sgd)."""
    names = [f"attr{a}" for a in range(labels.shape[1])]
    start, cpu = time.perf_counter(), time.process_time()
    if solver == "sgd":
        tables = sgd_tables(levels, labels)
    else:
        tables = {mode: fit_level_probes(levels, labels, names, mode=mode, solver=solver)
                  for mode in ("per_level", "cumulative")}
    return time.perf_counter() - start, time.process_time() - cpu, tables


def _accuracy(tables: dict) -> np.ndarray:
    """[A, 2K]: per-level then cumulative held-out accuracy."""
    return np.concatenate([getattr(t, "accuracy", t) for t in tables.values()], 1)


def main() -> None:
    """Parse arguments, run the solvers, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=70_000)
    parser.add_argument("--dims", default="16,16,256,256,256")
    parser.add_argument("--solvers", default="newton,liblinear,sgd")
    parser.add_argument("--attributes", default="1,5,10", help="attribute counts for the newton scaling table")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dims = [int(d) for d in args.dims.split(",")]
    counts = [int(a) for a in args.attributes.split(",")]
    levels, labels = make_latents(args.n, dims, max(counts))
    print(f"{args.n} latents × {sum(dims)} dims (levels {dims}), 80/20 split, {args.threads} torch threads, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}\n")
    print("Per-level + cumulative SVM tables (10 fits), 1 attribute:\n")
    print("| solver | wall s | CPU s | mean held-out accuracy | max gap to liblinear (points) |")
    print("|---|---:|---:|---:|---:|")
    results = {s: run_solver(s, levels, labels[:, :1]) for s in args.solvers.split(",")}
    ref = results.get("liblinear")
    for solver, (secs, cpu, tables) in results.items():
        acc = _accuracy(tables)
        gap = "" if ref is None else f"{100 * np.abs(acc - _accuracy(ref[2])).max():.2f}"
        print(f"| {solver} | {secs:.1f} | {cpu:.1f} | {acc.mean():.4f} | {gap} |")
    if "newton" in results:
        print("\nThe newton solver's tables (seed 000's layout):\n")
        for table in results["newton"][2].values():
            print(table.to_markdown() + "\n")
    print("\nnewton solver, several attributes at once (both tables):\n")
    print("| attributes | wall s | CPU s | wall s per attribute |")
    print("|---:|---:|---:|---:|")
    for count in counts:
        secs, cpu, _ = results["newton"] if count == 1 and "newton" in results else run_solver(
            "newton", levels, labels[:, :count])
        print(f"| {count} | {secs:.1f} | {cpu:.1f} | {secs / count:.1f} |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (wall times stretch when other jobs share the cores; "
          "CPU s is the work done)")


if __name__ == "__main__":
    main()
