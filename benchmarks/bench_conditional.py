#!/usr/bin/env python
"""Conditional-sampling precision per attribute (issue 5's target: ≥ 0.95 where prevalence ≥ 10%).

    .venv/bin/python benchmarks/bench_conditional.py assets/vae_synthfaces64 --judge runs/judge64 \
        --methods rejection,shift:1,shift:2 --n 200
    .venv/bin/python benchmarks/bench_conditional.py assets/cvae_synthfaces64 --judge runs/judge64 \
        --methods cvae,cvae:1.5,cvae_filter,cvae_filter:1.5

For every attribute whose prevalence among synthfaces faces is at least --min-prevalence, asks the
bundle's conditional sampler (facelab.probes.conditional) for --n faces with that attribute present
(target 1) and --n with it absent (target 0, when the absent class also reaches the prevalence
floor), then lets an image attribute classifier judge them. The judge should be one that never saw
the probes' labels: train a second classifier with another seed (which also draws other faces),

    python training/train_classifier.py --dataset synthfaces --size 64 --steps 400 --seed 1 --out runs/judge64

Prints a markdown table: attribute, prevalence, then per method the judged precision for target 1
/ target 0, the acceptance rate, and a last row with the minimum over attributes.

CVAE methods (facelab.models.cvae_sampling): `cvae[:s]` decodes prior z with the targeted input set to
s (1 - s for target 0; default 1, the plain condition); `cvae_filter[:s]` also keeps only the faces
the --filter classifier (default: the shipped one, not the judge) puts on the target's side with
probability ≥ --confidence.
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

from facelab.data.synthfaces import ATTRIBUTE_NAMES, SynthFaces, attributes_from_factors, sample_attributes  # noqa: E402
from facelab.hub import load_bundle  # noqa: E402
from facelab.models.classifier import load_attribute_classifier  # noqa: E402
from facelab.models.cvae_sampling import sample_cvae  # noqa: E402
from facelab.probes.conditional import ConditionalResult, conditional_sample, precision  # noqa: E402

#: cvae_filter's classifier: the shipped one, trained apart from the judge
DEFAULT_FILTER = str(ROOT / "assets" / "attribute_classifier")


def prevalence(n: int = 20_000, seed: int = 0) -> dict[str, float]:
    """Share of synthfaces faces with each attribute present (from the factor prior, no rendering)."""
    attrs = attributes_from_factors(SynthFaces(size=16, length=n, seed=seed).factors(np.arange(n)))
    return {a: float(attrs[:, i].mean()) for i, a in enumerate(ATTRIBUTE_NAMES)}


def parse_method(spec: str) -> tuple[str, float | None]:
    """'rejection:0.5', 'shift:2', 'nearest:2', 'cvae:1.5', 'cvae_filter' → (method, margin/strength or None)."""
    name, _, margin = spec.partition(":")
    if name not in ("rejection", "shift", "nearest", "cvae", "cvae_filter"):
        raise SystemExit(f"unknown method {spec!r}: use rejection[:margin], shift[:margin], nearest[:margin], "
                         "cvae[:strength] or cvae_filter[:strength]")
    return name, float(margin) if margin else None


def draw(bundle, method: str, margin: float | None, attribute: str, target: int, n: int, seed: int,
         variant: str, temperature: float, filter_classifier=None,
         confidence: float = 0.9) -> tuple[ConditionalResult, float]:
    """n faces meant to have attribute = target, and the draws' acceptance rate.

    cvae / cvae_filter: the conditional VAE decodes prior z with the (strengthened) target in its
    condition; the other attributes are drawn from the synthfaces prior given the target.
    """
    g = torch.Generator().manual_seed(seed)
    if method in ("cvae", "cvae_filter"):
        if bundle.model.kind != "cvae":
            raise SystemExit(f"method {method} needs a conditional VAE bundle, got {bundle.model.kind}")
        rng = np.random.default_rng(seed)
        got = sample_cvae(bundle.model, lambda k: torch.as_tensor(sample_attributes(rng, k, {attribute: target})),
                          {attribute: target}, n, strength=margin or 1.0, temperature=temperature, generator=g,
                          classifier=filter_classifier if method == "cvae_filter" else None,
                          confidence=confidence)
        k = len(got.images)
        res = ConditionalResult(got.images.float().cpu(), [], ["z"], {"z": got.acceptance_rate}, {"z": k},
                                {attribute: target}, np.ones(k, bool))
        return res, got.acceptance_rate
    kw = {"variant": variant} if bundle.model.kind == "hvae" else {}
    res = conditional_sample(bundle, {attribute: target}, n, method=method, margin=margin, generator=g,
                             temperature=temperature, **kw)
    return res, float(np.prod(list(res.acceptance_rate.values())))


def run(bundle_path: str, judge_path: str, methods: list[str], n: int, min_prev: float,
        seed: int, only: list[str] | None = None, variant: str = "per_level",
        temperature: float = 1.0, filter_path: str = DEFAULT_FILTER,
        confidence: float = 0.9) -> list[list[str]]:
    """The table rows: one per attribute, then the minimum and the mean cost per accepted face."""
    bundle, judge = load_bundle(bundle_path), load_attribute_classifier(judge_path)
    filt = load_attribute_classifier(filter_path) if any(m.startswith("cvae_filter") for m in methods) else None
    prev = prevalence()
    rows, worst = [], {m: 1.0 for m in methods}
    cost = {m: [0.0, 0] for m in methods}  # seconds, accepted faces
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
                t0 = time.perf_counter()
                res, rate = draw(bundle, method, margin, a, target, n, seed, variant, temperature, filt, confidence)
                cost[spec][0] += time.perf_counter() - t0
                cost[spec][1] += len(res.images)
                p = precision(res, judge)[a]
                worst[spec] = min(worst[spec], p)
                cells.append(f"{p:.3f}")
                accept.append(rate)
            row += [" / ".join(cells), f"{np.mean(accept):.2f}"]
        rows.append(row)
        print("|", " | ".join(row), "|", flush=True)
    rows.append(["**minimum**", ""] + sum(([f"**{worst[m]:.3f}**", ""] for m in methods), []))
    rows.append(["ms per accepted face", ""] + sum(([f"{1000 * s / max(k, 1):.1f}", ""] for s, k in cost.values()), []))
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
    p.add_argument("--filter", default=DEFAULT_FILTER,
                   help="cvae_filter: the image classifier that accepts faces (keep it other than --judge)")
    p.add_argument("--confidence", type=float, default=0.9, help="cvae_filter: probability a face must reach")
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
               args.temperature, args.filter, args.confidence)
    for row in rows[-2:]:
        print("|", " | ".join(row), "|")
    print(f"\n{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
