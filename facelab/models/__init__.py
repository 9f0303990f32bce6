"""facelab models behind one LatentModel interface, and the one registry that names them."""

from __future__ import annotations

import inspect
from typing import Any

from facelab.models.base import LatentModel, LevelSpec
from facelab.models.dcgan import DCGAN
from facelab.models.hvae import HierarchicalVAE
from facelab.models.stylegan import StyleGAN
from facelab.models.vae import VAE, ConditionalVAE

# β-VAE is a VAE configuration (beta > 1), not a class of its own.
MODELS: dict[str, type[LatentModel]] = {
    "vae": VAE,
    "cvae": ConditionalVAE,
    "hvae": HierarchicalVAE,
    "dcgan": DCGAN,
    "stylegan": StyleGAN,
}


def model_params(kind: str) -> dict[str, Any]:
    """The constructor arguments of a registered model and their defaults."""
    cls = _model_class(kind)
    sig = inspect.signature(cls.__init__)
    return {name: p.default for name, p in sig.parameters.items()
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def _model_class(kind: str) -> type[LatentModel]:
    if kind not in MODELS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(MODELS)}")
    return MODELS[kind]


def build_model(kind: str, params: dict[str, Any] | None = None) -> LatentModel:
    """Instantiate a registered model, refusing unknown constructor arguments by name."""
    params = dict(params or {})
    known = model_params(kind)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"unknown parameter(s) for model {kind!r}: {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    return _model_class(kind)(**params)


__all__ = ["MODELS", "LatentModel", "LevelSpec", "build_model", "model_params",
           "VAE", "ConditionalVAE", "HierarchicalVAE", "DCGAN", "StyleGAN"]
