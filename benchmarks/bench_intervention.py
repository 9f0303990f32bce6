"""Intervention effects per bundle: which latent dimensions move when one synthfaces factor changes.

    python benchmarks/bench_intervention.py assets/adagvae_synthfaces64 runs/x/bundle [--n 1000] [--seed 0]

Renders n faces from independent uniform factors, changes one factor at a time with the same
nuisance seed, encodes both (posterior means, all levels), and prints per factor the strongest
dimension's effect (mean |Δz| over the dimension's std: ≈ 1 = a full-range move), the summed effect
over all dimensions and how many dimensions move by more than 0.5. A factor whose strongest
effect stays near 0.1 is not encoded; the β-VAE metric cannot single it out (≈ 1 min per 64-px bundle).
Beside them, from the decoder's side: the pixels per face the factor changes, and the share of that
change the model's reconstructions keep (1 = drawn; near 0 = dropped, so no latent can carry it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facelab.data.synthfaces_factors import FACTOR_NAMES, FACTOR_SIZES  # noqa: E402
from facelab.hub import load_bundle  # noqa: E402
from facelab.metrics.evaluate import synthfaces_encoder, synthfaces_reconstructor  # noqa: E402
from facelab.metrics.intervention import (effect_summary, intervention_effects,  # noqa: E402
                                          reconstruction_response)


def main() -> None:
    """Measure each bundle and print one table per bundle."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for folder in args.bundles:
        bundle = load_bundle(folder)
        model = bundle.model.eval()
        size, background = int(model.image_size), bundle.meta.get("background") or "original"
        result = intervention_effects(synthfaces_encoder(model, size, background), FACTOR_SIZES, n=args.n,
                                      seed=args.seed)
        kept = reconstruction_response(synthfaces_reconstructor(model, size, background), FACTOR_SIZES,
                                       n=min(args.n, 256), seed=args.seed)
        print(f"\n### {folder}: {int(result['active'].sum())} active of {len(result['active'])} dimensions\n")
        print("| factor | pixels changed | kept in reconstruction | strongest dim | its effect | summed effect "
              "| dims > 0.5 |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for k, row in enumerate(effect_summary(result["effects"], FACTOR_NAMES)):
            print(f"| {row['factor']} | {kept['pixels'][k]:.0f} | {kept['ratio'][k]:.2f} | {row['top_dim']} "
                  f"| {row['top_effect']:.2f} | {row['total']:.1f} | {row['dims_over']} |", flush=True)


if __name__ == "__main__":
    main()
