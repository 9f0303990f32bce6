"""β-VAE metric per bundle, with the recall of each synthfaces factor: which factors a code singles out.

    python benchmarks/bench_disentanglement.py assets/vae_synthfaces64 runs/adagvae64_b1/bundle \
        [--batch 64 --train 2000 --eval 1000] [--seed 0]

Faces are rendered from independent uniform factors with fresh nuisance, as training/evaluate.py does
(disentanglement_lib's protocol: 64 pairs per point, 10,000 / 5,000 points by default there; fewer
here by default, ≈ 3–4 min per 64-px model on 2 CPU cores). Prints one markdown row per bundle.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facelab.data.synthfaces_factors import FACTOR_NAMES  # noqa: E402
from facelab.hub import load_bundle  # noqa: E402
from facelab.metrics.disentanglement import beta_vae_score  # noqa: E402
from facelab.metrics.evaluate import synthfaces_sample_fn  # noqa: E402

SHORT = {"skin_tone": "skin", "face_width": "width", "hair_colour": "hair", "hair_style": "style",
         "eyeglasses": "glasses", "lighting": "light", "bg_kind": "bg kind", "bg_colour": "bg col"}


def score(folder: str, batch: int, n_train: int, n_eval: int, seed: int) -> dict[str, float]:
    """The β-VAE metric (with per-factor recall) of one bundle, in eval mode."""
    bundle = load_bundle(folder)
    return beta_vae_score(synthfaces_sample_fn(bundle.model.eval(), bundle.meta, seed), batch, n_train, n_eval, seed)


def main() -> None:
    """Score each bundle and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--eval", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    names = [SHORT.get(n, n) for n in FACTOR_NAMES]
    print(f"β-VAE metric, batch {args.batch}, {args.train} train / {args.eval} eval points; recall per factor\n")
    print("| bundle | β-VAE metric | s | " + " | ".join(names) + " |")
    print("|---|---:|---:|" + "---:|" * len(names))
    for folder in args.bundles:
        start = time.perf_counter()
        result = score(folder, args.batch, args.train, args.eval, args.seed)
        recalls = " | ".join(f"{result[f'recall_{k}']:.2f}" if f"recall_{k}" in result else "—"
                             for k in range(len(names)))
        print(f"| {folder} | {result['eval_accuracy']:.3f} | {time.perf_counter() - start:.0f} | {recalls} |",
              flush=True)


if __name__ == "__main__":
    main()
