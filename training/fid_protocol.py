#!/usr/bin/env python
"""The shared FID protocol for bundles: 1,000 generated vs 1,000 held-out synthfaces, plus the data floor.

    python training/fid_protocol.py assets/vae_synthfaces64 assets/dcgan_synthfaces64 --write
    python training/fid_protocol.py assets/vae_synthfaces64 --sizes 32 --write     # also at 32 px
    python training/fid_protocol.py assets/hvae_synthfaces64 --temperatures 1 0.8 0.6

Every bundle is scored at its own resolution and at each --sizes value below it (area-downsampled
samples vs reals rendered at that size), against reals of its own background variant. --write
merges fid_1000 / kid_1000 / kid_1000_std / fid_floor_1000 (suffixed _32px, _T0.8 where they apply)
into BUNDLE/metrics.json and facelab.json and refreshes the model card. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from facelab.hub import BundleError, load_bundle  # noqa: E402
from facelab.metrics.evaluate import METRICS_FILE, write_metrics  # noqa: E402
from facelab.metrics.fid import InceptionUnavailable  # noqa: E402
from facelab.metrics.fid_protocol import PROTOCOL_N, metric_keys, protocol_scores, temperature_label  # noqa: E402


def temperature_arg(text: str) -> float | list[float]:
    """One temperature, or one per level written as a comma list."""
    values = [float(v) for v in text.split(",")]
    return values[0] if len(values) == 1 else values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line: bundles, extra resolutions, temperatures, n, --write."""
    p = argparse.ArgumentParser(description="FID/KID of bundles under facelab's 1,000 vs 1,000 protocol.")
    p.add_argument("bundles", nargs="+", help="bundle folders")
    p.add_argument("--sizes", type=int, nargs="*", default=[], help="also score at these resolutions (below the model's)")
    p.add_argument("--temperatures", type=temperature_arg, nargs="*", default=[1.0],
                   help="sampling temperatures (default 1); an HVAE takes one per level as a comma list, e.g. 1,1,0.6,0.3")
    p.add_argument("--n", type=int, default=PROTOCOL_N, help=f"generated and real images (default {PROTOCOL_N})")
    p.add_argument("--write", action="store_true", help="merge the results into each bundle's metrics.json")
    p.add_argument("--device", default="cpu")
    return p.parse_args(argv)


def merge_into_bundle(folder: Path, kind: str, results: list[dict], model_size: int) -> Path:
    """Add protocol results to folder/metrics.json (created if absent), facelab.json and the card."""
    path = folder / METRICS_FILE
    current = json.loads(path.read_text()) if path.is_file() else {
        "bundle": str(folder), "kind": kind, "metrics": {}, "details": {}, "notes": {}}
    protocol = current.setdefault("details", {}).setdefault("fid_protocol", {})
    for scores in results:
        keys = metric_keys(scores, model_size)
        current.setdefault("metrics", {}).update(keys)
        protocol[next(iter(keys))] = scores
    return write_metrics(folder, current)


def main(argv: list[str] | None = None) -> int:
    """Score every bundle; print one table; 2 on a bad bundle or without Inception weights."""
    args = parse_args(argv)
    rows = ["| bundle | kind | background | px | T | FID | KID ×10³ (± std) | data floor FID |",
            "|---|---|---|---:|---:|---:|---:|---:|"]
    try:
        for source in args.bundles:
            bundle = load_bundle(source, device=args.device, with_probes=False)
            model, bg = bundle.model.eval(), str(bundle.meta.get("background") or "original")
            own = int(model.image_size)
            sizes = [own] + [s for s in args.sizes if s < own]
            results = []
            for size in sizes:
                for t in args.temperatures:
                    s = protocol_scores(model, bg, size, args.n, t, args.device)
                    results.append(s)
                    rows.append(f"| {bundle.name} | {model.kind} | {bg} | {size} | {temperature_label(t)} | {s['fid']:.1f} | "
                                f"{1e3 * s['kid']:.1f} ± {1e3 * s['kid_std']:.1f} | {s['fid_floor']:.1f} |")
                    print(rows[-1], file=sys.stderr, flush=True)
            if args.write:
                merge_into_bundle(Path(source), model.kind, results, own)
    except (BundleError, InceptionUnavailable, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
