"""What the β-VAE metric can give on synthfaces when a code leaves factors out: ideal codes, no model.

    python benchmarks/bench_disentanglement_ceiling.py [--train 2000] [--eval 1000] [--batch 64]

Each row is an ideal code of synthfaces' 15 factors (one dimension per factor, a little noise) with
some factors removed, plus pure-noise dimensions up to the models' 64, scored with the same β-VAE
metric (facelab.metrics.disentanglement) as the trained models. One missing factor is still named by
elimination; k ≥ 2 missing factors share one class the classifier cannot split, so the ceiling is
about (15 − k + 1)/15. This is the scale against which a model's 0.85–0.86 reads: all but three
factors encoded, the three small facial ones (age, smile, lipstick) not (≈ 10 s).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facelab.data.synthfaces_factors import FACTOR_INDEX, FACTOR_SIZES  # noqa: E402
from facelab.metrics.disentanglement import beta_vae_score, factor_sampler  # noqa: E402

LATENT_DIM = 64  # the shipped synthfaces VAEs' latent size
SMALL = ("age", "smile", "lipstick")
ROWS: list[tuple[str, tuple[str, ...]]] = [
    ("all 15 factors", ()),
    ("lipstick left out", ("lipstick",)),
    ("age, lipstick left out", ("age", "lipstick")),
    ("age, smile, lipstick left out", SMALL),
    ("age, smile, lipstick, beard left out", SMALL + ("beard",)),
]


def ideal_code(left_out: tuple[str, ...], seed: int = 0, noise: float = 0.05) -> Callable[[np.ndarray], np.ndarray]:
    """Factors [n, 15] -> an axis-aligned code without the left-out factors, padded with N(0, 1) dims."""
    rng = np.random.default_rng(seed)
    dropped = {FACTOR_INDEX[f] for f in left_out}
    keep = [k for k in range(len(FACTOR_SIZES)) if k not in dropped]
    scale = np.maximum(np.asarray(FACTOR_SIZES, np.float64) - 1, 1)

    def encode(factors: np.ndarray) -> np.ndarray:
        z = factors[:, keep] / scale[keep] + noise * rng.standard_normal((len(factors), len(keep)))
        return np.hstack([z, rng.standard_normal((len(factors), LATENT_DIM - len(keep)))])

    return encode


def main() -> None:
    """Score each ideal code and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--eval", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    print(f"β-VAE metric of ideal codes (batch {args.batch}, {args.train} train / {args.eval} eval points)\n")
    print("| code | β-VAE metric | recall age / smile / lipstick |")
    print("|---|---:|---|")
    for name, left_out in ROWS:
        sampler = factor_sampler(FACTOR_SIZES, ideal_code(left_out))
        r = beta_vae_score(sampler, batch_size=args.batch, n_train=args.train, n_eval=args.eval)
        recalls = " / ".join(f"{r[f'recall_{FACTOR_INDEX[f]}']:.2f}" for f in SMALL)
        print(f"| {name} | {r['eval_accuracy']:.3f} | {recalls} |")


if __name__ == "__main__":
    main()
