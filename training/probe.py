#!/usr/bin/env python
"""Fit latent probes on a trained bundle: seed 000's SVM tables, MLP check, age-restricted tables,
attribute directions and PCA bases, written to BUNDLE/probes/ and summarised in facelab.json.

    python training/probe.py runs/hvae_synthfaces64/bundle                     # the bundle's own dataset
    python training/probe.py BUNDLE --dataset ffhq --root /data/ffhq --n 70000  # seed 000's scale
    python training/probe.py runs/stylegan/bundle --classifier runs/classifier   # GANs: labelled samples
    python training/probe.py BUNDLE --source generated --classifier runs/classifier  # VAEs: p(c | decode(z))

Encoding models encode the first --n items of the dataset (posterior means per level); GANs sample
--n latents (z, and w for StyleGAN) and label the images with the attribute classifier at --classifier.
Give encoding models --classifier too: their prior samples are then labelled and probed as well
("generated/svm/..."), and conditional sampling uses those — posterior-mean probes transfer poorly
to prior samples (on a 32 px synthfaces VAE, Eyeglasses precision 0.24 with them, 0.90 without).
Latents are cached (see facelab.probes.encode), so re-running with other probe options is fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python training/probe.py` from anywhere imports this checkout
    sys.path.insert(0, str(ROOT))

from facelab.data.build import DATASET_NAMES  # noqa: E402
from facelab.hub import BundleError, load_bundle  # noqa: E402
from facelab.probes.fit import DEFAULT_N, MLP_MODES, SOURCES, fit_bundle_probes  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line: BUNDLE plus data, size, classifier, cache and probe options."""
    p = argparse.ArgumentParser(description="Fit latent probes (SVM/MLP tables, directions, PCA) on a bundle.")
    p.add_argument("bundle", help="bundle folder or Hub repo id (user/name[@revision])")
    p.add_argument("--dataset", choices=DATASET_NAMES, help="dataset to encode (default: the bundle's)")
    p.add_argument("--root", help="dataset folder (or Hub dataset id for --dataset hub)")
    p.add_argument("--split", default="train", help="dataset split (default: train)")
    p.add_argument("--n", type=int, default=DEFAULT_N, help=f"how many faces to encode or sample (default {DEFAULT_N})")
    p.add_argument("--classifier", help="attribute classifier folder: labels sampled images (GANs' only labels; "
                   "for VAEs it adds generated/svm probes, which conditional sampling prefers)")
    p.add_argument("--source", choices=SOURCES, default="auto",
                   help="latents: posterior means of the dataset (VAEs' default) or classifier-labelled prior samples")
    p.add_argument("--mlp", choices=MLP_MODES, default="all",
                   help="MLP tables: all = one on every level together (default), or per_level/cumulative/both/none")
    p.add_argument("--no-age", action="store_true", help="skip the age-restricted tables")
    p.add_argument("--pca-components", type=int, default=256, help="PCA components kept per level")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0, help="split and sampling seed")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache-dir", help="latent cache folder (default: $FACELAB_CACHE or ~/.cache/facelab/latents)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the latent cache")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Fit and save the probes; print seed-000-style markdown tables. 0 on success, 2 on a usage error."""
    args = parse_args(argv)
    try:
        bundle = load_bundle(args.bundle, device=args.device, with_probes=False)
        out = fit_bundle_probes(
            bundle, n=args.n, dataset=args.dataset, classifier=args.classifier,
            age_mask=None if args.no_age else "auto", mlp=args.mlp, split=args.split, root=args.root,
            pca_components=args.pca_components, seed=args.seed, batch_size=args.batch_size,
            cache_dir=args.cache_dir, use_cache=not args.no_cache, source=args.source)
    except (BundleError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = out["summary"]
    enc = out["encoded"]
    print(f"# Latent probes: {bundle.name} ({bundle.model.kind})\n")
    print(f"{enc.n} {'encoded faces' if enc.source == 'dataset' else 'sampled latents'}"
          f"{' (latents from cache)' if enc.info.get('from_cache') else ''}; levels "
          f"{', '.join(enc.level_names)}; restriction: {summary['restriction']['rule']} "
          f"({summary['restriction']['n']} faces)")
    dims = dict(zip(enc.level_names, (x.shape[1] for x in enc.levels)))
    print("active units (posterior-mean variance > 0.01): "
          + ", ".join(f"{k} {v}/{dims[k]}" for k, v in summary["active_units"].items()))
    if summary["skipped_attributes"]:
        print(f"not probed (fewer than 5 of a class): {', '.join(summary['skipped_attributes'])}")
    print()
    print(out["markdown"])
    print(f"\nprobes written to {out['folder']} (fit {summary['fit_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
