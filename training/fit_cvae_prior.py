#!/usr/bin/env python
"""Fit a conditional VAE's prior p(z | attributes) to its posteriors and write the bundle with it.

    python training/fit_cvae_prior.py assets/cvae_synthfaces64 --n 20000
    python training/fit_cvae_prior.py runs/cvae/bundle --out runs/cvae_fitted --n 20000

Encodes the first --n items of the bundle's dataset with their attributes, fits z = W a + b + L ε
(facelab.models.latent_prior) and saves the model with config prior="fitted", so `sample` draws z
that agree with the asked-for attributes (see the module's docstring for why N(0, I) does not).
The bundle's other files are kept; facelab.json records the fit under "latent_prior".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python training/fit_cvae_prior.py` from anywhere imports this checkout
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from facelab.hub import WEIGHTS_FILE, BundleError, load_bundle  # noqa: E402
from facelab.probes.fit import bundle_dataset  # noqa: E402
from training.refit import save_refitted, with_config  # noqa: E402


def encode_posteriors(model, dataset, n: int, batch_size: int) -> tuple[torch.Tensor, ...]:
    """Posterior means, log-variances and attributes of the first n dataset items."""
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, range(min(n, len(dataset)))),
                                         batch_size=batch_size)
    mus, logvars, attrs = [], [], []
    with torch.no_grad():
        for batch in loader:
            if "attributes" not in batch:
                raise ValueError("the dataset has no attributes: a conditional prior needs labelled images")
            cond = batch["attributes"].float()
            mu, logvar = model._posterior(batch["image"].to(model.device), cond.to(model.device))
            mus.append(mu.cpu()), logvars.append(logvar.cpu()), attrs.append(cond)
    return torch.cat(mus), torch.cat(logvars), torch.cat(attrs)


def fit_prior(bundle, n: int, batch_size: int = 128):
    """A copy of the bundle's CVAE with prior="fitted", fitted on n encoded images; (model, fit report)."""
    model = bundle.model
    if getattr(model, "kind", None) != "cvae":
        raise ValueError(f"a fitted prior is for conditional VAEs (kind cvae), not {getattr(model, 'kind', None)}")
    model.eval()
    fitted = with_config(model, prior="fitted")
    mu, logvar, attrs = encode_posteriors(model, bundle_dataset(bundle, n=n), n, batch_size)
    report = fitted.latent_prior.fit(mu, logvar, attrs)
    return fitted, report


def main(argv: list[str] | None = None) -> int:
    """Fit and save; 0 on success, 2 on a usage error."""
    p = argparse.ArgumentParser(description="Fit a CVAE's conditional prior p(z | a) and save the bundle with it.")
    p.add_argument("bundle", help="CVAE bundle folder")
    p.add_argument("--out", help="output folder (default: rewrite the bundle in place)")
    p.add_argument("--n", type=int, default=20000, help="images to encode (default 20000)")
    p.add_argument("--batch-size", type=int, default=128)
    args = p.parse_args(argv)
    try:
        bundle = load_bundle(args.bundle, with_probes=False)
        fitted, report = fit_prior(bundle, args.n, args.batch_size)
    except (BundleError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cmd = "python training/fit_cvae_prior.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = save_refitted(bundle, args.bundle, args.out, fitted, {"kind": "linear_gaussian", "command": cmd, **report})
    print(f"fitted p(z | a) on {report['n']} images: attributes explain {report['mean_r2']:.3f} of the "
          f"posterior means' variance; written to {out / WEIGHTS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
