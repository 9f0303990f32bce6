"""facelab models behind one LatentModel interface, and the one registry that names them."""

from __future__ import annotations

import inspect
import numbers
from typing import Any

import numpy as np

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
    params = {name: _check_param(kind, name, value) for name, value in params.items()}
    return _model_class(kind)(**params)


_SCALARS = {"bool": (lambda v: isinstance(v, (bool, np.bool_)), "true or false"),
            "int": (lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool), "a whole number"),
            "float": (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool), "a number"),
            "str": (lambda v: isinstance(v, str), "text")}


def _check_param(kind: str, name: str, value: Any) -> Any:
    """Refuse a value of the wrong type for a scalar argument ('latent_dim=abc'), naming the argument.

    Without this the value travels into torch and comes back as "empty(): argument 'size' must be
    tuple of ints". Only plain `int`/`float`/`bool`/`str` arguments (optionally `| None`) are checked;
    anything richer (`int | Sequence[int]`) is the model's to check.
    """
    annotation = str(inspect.signature(_model_class(kind).__init__).parameters[name].annotation)
    base, optional = annotation.removesuffix(" | None"), annotation.endswith(" | None")
    if base not in _SCALARS or (value is None and optional):
        return value
    if base == "float" and isinstance(value, str):
        try:  # YAML 1.1 reads "1e-3" (no dot) as text, as facelab.config allows for its own floats
            return float(value)
        except ValueError:
            pass
    ok, word = _SCALARS[base]
    if not ok(value):
        raise ValueError(f"{name}: expected {word}, got {type(value).__name__} {value!r}")
    return value
