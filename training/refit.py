"""What the fit-a-prior-after-training scripts share (fit_cvae_prior.py, fit_hvae_prior.py).

A prior fitted after training is a buffer module the model builds when its config asks for it
(CVAE prior="fitted", HVAE top_prior_components=K): the scripts rebuild the model with that config,
carry the trained networks over, fit, and write the bundle back with a record in facelab.json.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from facelab.hub import halve_weights, update_meta


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
