"""How loudly each synthfaces factor speaks in a reconstruction loss: pixel MSE vs feature matching.

    python benchmarks/bench_perceptual_signal.py [--bundle assets/adagvae_synthfaces64]
        [--classifier assets/attribute_classifier] [--n 128] [--seed 0]

Renders n faces from independent uniform factors, changes one factor at a time with the same nuisance
seed, and prints the mean distance between the two images under each loss (summed pixel MSE; the
feature term of facelab.models.perceptual with a random CNN and with the attribute classifier),
divided by the bundle's mean reconstruction error under the same loss. A factor whose change is a
small fraction of what the model already gets wrong gives the encoder little reason to code it
(age, lipstick under pixel MSE: BENCHMARKS.md). ≈ 20 s at 64 px on one core.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from facelab.data.synthfaces import render  # noqa: E402
from facelab.data.synthfaces_factors import FACTOR_NAMES, FACTOR_SIZES  # noqa: E402
from facelab.hub import load_bundle  # noqa: E402
from facelab.imaging import from_uint8  # noqa: E402
from facelab.models.perceptual import FeatureLoss, build_feature_net  # noqa: E402

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _images(factors: np.ndarray, size: int, seeds: np.ndarray) -> torch.Tensor:
    """Rendered faces as float [n,3,H,W] in [-1, 1]."""
    return from_uint8(render(factors, size, seeds)[0])


def main() -> None:
    """Print one row per factor: its change over the model's reconstruction error, per loss."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", default="assets/adagvae_synthfaces64")
    parser.add_argument("--classifier", default="assets/attribute_classifier")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = load_bundle(args.bundle).model.eval()
    size = int(model.image_size)
    losses: dict[str, Distance] = {
        "pixel MSE": lambda a, b: (a - b).pow(2).flatten(1).sum(1),
        "random CNN": FeatureLoss(build_feature_net("random", size)),
        "attribute classifier": FeatureLoss(build_feature_net(args.classifier, size)),
    }
    rng = np.random.default_rng(args.seed)
    sizes = np.asarray(FACTOR_SIZES)
    base = np.stack([rng.integers(0, s, args.n) for s in sizes], axis=1)
    seeds = rng.integers(0, 2**62, args.n, dtype=np.int64).astype(np.uint64)
    x0 = _images(base, size, seeds)
    with torch.no_grad():
        recon = model.reconstruct(x0)
        error = {name: float(fn(recon, x0).mean()) for name, fn in losses.items()}
        print(f"\n{args.bundle}: mean reconstruction error " + ", ".join(f"{k} {v:.1f}" for k, v in error.items()))
        print("\n| factor | " + " | ".join(losses) + " |")
        print("|---|" + "---:|" * len(losses))
        for k, name in enumerate(FACTOR_NAMES):
            changed = base.copy()
            changed[:, k] = (base[:, k] + rng.integers(1, sizes[k], args.n)) % sizes[k]
            x1 = _images(changed, size, seeds)
            cells = [f"{float(fn(x1, x0).mean()) / error[n]:.3f}" for n, fn in losses.items()]
            print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
