#!/usr/bin/env python
"""Fit a hierarchical VAE's top-level prior as a Gaussian mixture and write the bundle with it.

    python training/fit_hvae_prior.py assets/hvae_synthfaces64 --components 20 --n 10000
    python training/fit_hvae_prior.py runs/hvae/bundle --out runs/hvae_fitted

Encodes the first --n items of the bundle's dataset, draws one posterior sample of level 0 per face
(mean + std·ε, so the mixture covers the aggregate posterior, not only its means) and fits a
full-covariance mixture (facelab.models.latent_prior.GaussianMixturePrior). The model is saved with
config top_prior_components=K: `sample` then draws level 0 from the mixture and every finer level
from the learned top-down priors given it (see the module for why). facelab.json records the fit
under "latent_prior". Refitting a bundle that has one replaces it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from facelab.hub import WEIGHTS_FILE, BundleError, load_bundle  # noqa: E402
from facelab.probes.fit import bundle_dataset  # noqa: E402
from training.refit import save_refitted, with_config  # noqa: E402


def top_draws(model, dataset, n: int, batch_size: int, seed: int) -> torch.Tensor:
    """One posterior draw of level 0 per image for the first n items: [n, D]."""
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, range(min(n, len(dataset)))),
                                         batch_size=batch_size)
    g = torch.Generator().manual_seed(seed)
    draws = []
    with torch.no_grad():
        for batch in loader:
            mean, logstd = model.encode_posteriors(batch["image"])[0]
            eps = torch.randn(mean.shape, generator=g)
            draws.append((mean.cpu() + logstd.exp().cpu() * eps).flatten(1))
    return torch.cat(draws)


def fit_top_prior(bundle, components: int, n: int, batch_size: int = 100, seed: int = 0):
    """A copy of the bundle's HVAE with a level-0 mixture of `components` fitted on n faces; (model, report)."""
    model = bundle.model
    if getattr(model, "kind", None) != "hvae":
        raise ValueError(f"a fitted top prior is for hierarchical VAEs (kind hvae), not {getattr(model, 'kind', None)}")
    if components < 1:
        raise ValueError(f"--components must be >= 1, got {components}")
    model = model.float().eval()
    fitted = with_config(model, top_prior_components=components)
    z = top_draws(model, bundle_dataset(bundle, n=n), n, batch_size, seed)
    report = fitted.top_prior.fit(z, seed=seed)
    return fitted, report


def main(argv: list[str] | None = None) -> int:
    """Fit and save; 0 on success, 2 on a usage error."""
    p = argparse.ArgumentParser(description="Fit an HVAE's top-level prior (Gaussian mixture) and save the bundle with it.")
    p.add_argument("bundle", help="HVAE bundle folder")
    p.add_argument("--out", help="output folder (default: rewrite the bundle in place)")
    p.add_argument("--components", type=int, default=20, help="mixture components (default 20)")
    p.add_argument("--n", type=int, default=10000, help="images to encode (default 10000)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        bundle = load_bundle(args.bundle, with_probes=False)
        fitted, report = fit_top_prior(bundle, args.components, args.n, args.batch_size, args.seed)
    except (BundleError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cmd = "python training/fit_hvae_prior.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = save_refitted(bundle, args.bundle, args.out, fitted,
                        {"kind": "gaussian_mixture", "level": 0, "command": cmd, **report})
    print(f"fitted a {report['components']}-component mixture to level 0 of {report['n']} faces "
          f"(converged: {report['converged']}); written to {Path(out) / WEIGHTS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
