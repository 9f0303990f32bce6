#!/usr/bin/env python
"""Train the image attribute classifier that judges generated faces (seed 001's role).

    python training/train_classifier.py --dataset synthfaces --size 64 --out runs/classifier_synthfaces64
    python training/train_classifier.py --dataset celeba --root /data/celeba --out runs/classifier_celeba64

Writes OUT/config.json + OUT/diffusion_pytorch_model.safetensors (load with
facelab.metrics.attributes.load_attribute_classifier) and OUT/facelab.json
{kind: "attribute_classifier", dataset, image_size, attribute_names, accuracy: the held-out report}.
Held out: CelebA's official test partition when the dataset has one (--eval-split), otherwise a
seeded 80/20 split of the training items. Prints the per-attribute accuracy as a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python training/train_classifier.py` from anywhere imports this checkout
    sys.path.insert(0, str(ROOT))

from facelab.data.build import DATASET_NAMES, build_dataset  # noqa: E402
from facelab.metrics.attributes import train_attribute_classifier  # noqa: E402
from facelab.models.classifier import CLASSIFIER_KIND  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line: dataset, size, steps, batch, lr, seed, output folder."""
    p = argparse.ArgumentParser(description="Train the multi-label image attribute classifier.")
    p.add_argument("--dataset", choices=DATASET_NAMES, default="synthfaces")
    p.add_argument("--root", help="dataset folder (or Hub id for --dataset hub)")
    p.add_argument("--size", type=int, default=64, help="image size (default 64)")
    p.add_argument("--background", default="original", choices=("original", "grey", "blur"))
    p.add_argument("--length", type=int, default=50_000, help="synthfaces: number of faces")
    p.add_argument("--eval-split", default=None,
                   help="held-out split of the dataset (e.g. test for CelebA); default: 20%% of --split")
    p.add_argument("--split", default="train")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-eval", type=int, default=5000, help="held-out images evaluated at most")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True, help="output folder")
    return p.parse_args(argv)


def _dataset(args: argparse.Namespace, split: str) -> Any:
    kw = {"length": args.length, "seed": args.seed} if args.dataset == "synthfaces" else {}
    return build_dataset(args.dataset, root=args.root, size=args.size, split=split,
                         background=args.background, **kw)


def report_table(report: dict[str, Any]) -> str:
    """Per-attribute held-out accuracy, balanced accuracy and majority baseline as markdown."""
    lines = ["| attribute | accuracy | balanced | majority |", "|---|---|---|---|"]
    for name, acc in report["held_out_accuracy"].items():
        lines.append(f"| {name} | {acc:.3f} | {report['balanced_accuracy'][name]:.3f} "
                     f"| {report['majority_baseline'][name]:.3f} |")
    lines.append(f"| **mean** | {report['mean_accuracy']:.3f} | {report['mean_balanced_accuracy']:.3f} "
                 f"| {report['mean_majority_baseline']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Train, save the classifier folder with facelab.json, print the table; 0 ok, 2 on a usage error."""
    args = parse_args(argv)
    try:
        train = _dataset(args, args.split)
        held_out = _dataset(args, args.eval_split) if args.eval_split else None
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    model, report = train_attribute_classifier(train, steps=args.steps, batch=args.batch, lr=args.lr,
                                               seed=args.seed, eval_dataset=held_out, max_eval=args.max_eval,
                                               image_size=min(64, args.size), device=args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    meta = {"kind": CLASSIFIER_KIND, "dataset": args.dataset, "background": args.background,
            "image_size": args.size, "attribute_names": model.attribute_names,
            "held_out": args.eval_split or "random 20% of the training split",
            "accuracy": report, "seconds": round(time.perf_counter() - start, 1)}
    (out / "facelab.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    print(report_table(report))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
