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
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python training/fit_cvae_prior.py` from anywhere imports this checkout
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from facelab.hub import WEIGHTS_FILE, BundleError, halve_weights, load_bundle, update_meta  # noqa: E402
from facelab.probes.fit import bundle_dataset  # noqa: E402


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


def with_config(model, **changes):
    """A copy of model built with config changes, holding model's weights (new buffers left at their init)."""
    # private keys out: diffusers' "_use_default_values" would reset the changed keys to their defaults
    params = {k: v for k, v in dict(model.config).items() if not k.startswith("_")}
    copy = type(model).from_config({**params, **changes})
    new = tuple(f"{name}." for name in ("latent_prior", "top_prior"))
    # a refit replaces an earlier fit (whose shape may differ): only the networks carry over
    kept = {k: v for k, v in model.state_dict().items() if not k.startswith(new)}
    missing, unexpected = copy.load_state_dict(kept, strict=False)
    if unexpected or any(not k.startswith(new) for k in missing):
        raise ValueError(f"unexpected weights layout: missing {missing}, unexpected {unexpected}")
    return copy.eval()


def save_refitted(bundle, source: str, out: str | None, fitted, record: dict) -> Path:
    """Write the bundle with the fitted model (fp16 when the bundle was) and facelab.json's latent_prior record."""
    out_path = Path(out or source)
    if out_path.resolve() != Path(source).resolve():
        shutil.copytree(source, out_path, dirs_exist_ok=True)
    fitted.save_pretrained(out_path, safe_serialization=True)
    if bundle.meta.get("weights_dtype") == "float16":
        halve_weights(out_path)
    update_meta(out_path, latent_prior=record)
    return out_path


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
