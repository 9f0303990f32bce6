#!/usr/bin/env python
"""Conditional-sampling precision per attribute (issue 5's target: ≥ 0.95 where prevalence ≥ 10%).

    .venv/bin/python benchmarks/bench_conditional.py assets/vae_synthfaces64 --judge runs/judge64 \
        --methods rejection,shift:1,shift:2 --n 200

For every attribute whose prevalence among synthfaces faces is at least --min-prevalence, asks the
bundle's conditional sampler (facelab.probes.conditional) for --n faces with that attribute present
(target 1) and --n with it absent (target 0, when the absent class also reaches the prevalence
floor), then lets an image attribute classifier judge them. The judge should be one that never saw
the probes' labels: train a second classifier with another seed (which also draws other faces),

    python training/train_classifier.py --dataset synthfaces --size 64 --steps 400 --seed 1 --out runs/judge64

Prints a markdown table: attribute, prevalence, then per method the judged precision for target 1
/ target 0, the acceptance rate, and a last row with the minimum over attributes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from facelab.data.synthfaces import ATTRIBUTE_NAMES, SynthFaces, attributes_from_factors  # noqa: E402
from facelab.hub import load_bundle  # noqa: E402
from facelab.metrics.attributes import load_attribute_classifier  # noqa: E402
from facelab.probes.conditional import conditional_sample, precision  # noqa: E402


def prevalence(n: int = 20_000, seed: int = 0) -> dict[str, float]:
    """Share of synthfaces faces with each attribute present (from the factor prior, no rendering)."""
    attrs = attributes_from_factors(SynthFaces(size=16, length=n, seed=seed).factors(np.arange(n)))
    return {a: float(attrs[:, i].mean()) for i, a in enumerate(ATTRIBUTE_NAMES)}


def parse_method(spec: str) -> tuple[str, float | None]:
    """'rejection', 'rejection:0.5', 'shift:2' or 'nearest:2' → (method, margin or None for the default)."""
    name, _, margin = spec.partition(":")
    if name not in ("rejection", "shift", "nearest"):
        raise SystemExit(f"unknown method {spec!r}: use rejection[:margin], shift[:margin] or nearest[:margin]")
    return name, float(margin) if margin else None


def run(bundle_path: str, judge_path: str, methods: list[str], n: int, min_prev: float,
        seed: int, only: list[str] | None = None, variant: str = "per_level",
        temperature: float = 1.0) -> list[list[str]]:
    """The table rows: one per attribute, then the minimum."""
    bundle, judge = load_bundle(bundle_path), load_attribute_classifier(judge_path)
    prev = prevalence()
    rows, worst = [], {m: 1.0 for m in methods}
    for a in ATTRIBUTE_NAMES:
        if prev[a] < min_prev or (only and a not in only):
            continue
        row = [a, f"{prev[a]:.3f}"]
        for spec in methods:
            method, margin = parse_method(spec)
            cells, accept = [], []
            for target in (1, 0):
                share = prev[a] if target else 1 - prev[a]
                if share < min_prev:
                    cells.append("—")
                    continue
                g = torch.Generator().manual_seed(seed)
                kw = {"variant": variant} if bundle.model.kind == "hvae" else {}
                res = conditional_sample(bundle, {a: target}, n, method=method, margin=margin, generator=g,
                                         temperature=temperature, **kw)
                p = precision(res, judge)[a]
                worst[spec] = min(worst[spec], p)
                cells.append(f"{p:.3f}")
                accept.append(next(iter(res.acceptance_rate.values())))
            row += [" / ".join(cells), f"{np.mean(accept):.2f}"]
        rows.append(row)
        print("|", " | ".join(row), "|", flush=True)
    rows.append(["**minimum**", ""] + sum(([f"**{worst[m]:.3f}**", ""] for m in methods), []))
    return rows


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run every attribute, print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("bundle")
    p.add_argument("--judge", default=str(ROOT / "assets" / "attribute_classifier"))
    p.add_argument("--methods", default="rejection,shift:1,shift:2")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--min-prevalence", type=float, default=0.10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0, help="prior temperature of the draws")
    p.add_argument("--attributes", help="comma-separated subset (default: every attribute above the floor)")
    p.add_argument("--variant", default="per_level", choices=("per_level", "cumulative"),
                   help="HVAE: which level classifiers judge each level (seed 000's variants 1 and 2)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    methods = [m for m in args.methods.split(",") if m]
    t0 = time.time()
    print(f"bundle {args.bundle}, judge {args.judge}, n={args.n} per target, temperature {args.temperature}\n")
    head = ["attribute", "prevalence"] + sum(([f"{m} precision (1 / 0)", f"{m} accept"] for m in methods), [])
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    only = [a for a in (args.attributes or "").split(",") if a]
    rows = run(args.bundle, args.judge, methods, args.n, args.min_prevalence, args.seed, only, args.variant,
               args.temperature)
    print("|", " | ".join(rows[-1]), "|")
    print(f"\n{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
