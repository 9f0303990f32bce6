"""Typed run configuration: dataclasses, strict YAML loading and `key=value` overrides.

Unknown keys and wrong types are refused with the full dotted key named, so a typo in a preset
or on the command line fails before any compute is spent.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration key is unknown, missing or of the wrong type."""


@dataclass
class DataConfig:
    """Which images to train on."""

    name: str = "synthfaces"  # synthfaces | celeba | ffhq | folder | hub
    root: str | None = None  # dataset folder, or Hub dataset id for name=hub
    image_size: int = 64
    background: Literal["original", "grey", "blur"] = "original"
    split: str = "train"
    length: int = 50_000  # synthfaces only: number of distinct faces
    seed: int = 0  # synthfaces only: which faces
    attributes: list[str] | None = None  # subset of attribute names; None = all
    image_column: str = "image"  # hub only
    pairs: bool = False  # synthfaces only: items carry a partner face sharing all but a few factors (Ada-GVAE)
    pair_changes: int | None = None  # with pairs: factors redrawn per pair; null = uniformly random 1..F-1
    factor_prior: str = "correlated"  # synthfaces only: correlated (CelebA-like) | uniform (independent factors)
    num_workers: int = 0


@dataclass
class ModelConfig:
    """Which model to build: a registry name plus its constructor arguments."""

    kind: str = "vae"  # a key of facelab.models.MODELS
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    """How to train: steps, batches, optimiser, precision, logging and checkpoints."""

    output_dir: str = "runs/default"
    seed: int = 0
    max_steps: int = 10_000
    batch_size: int = 64  # global batch, split across processes
    learning_rate: float | None = None  # None = the model's default
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    gradient_clip: float | None = None
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 1000
    checkpoints_total_limit: int = 3
    num_samples: int = 64
    report_to: str = "tensorboard"
    ema_decay: float | None = None  # VAE family: sample and release an EMA of the weights (e.g. 0.999)
    init_from: str | None = None  # bundle folder or Hub id whose weights start the run (fine-tuning); same model
    channels_last: bool = False  # CPU lever: 4-D weights and image batches in NHWC (training/speed.py)
    compile: bool = False  # CPU lever: torch.compile (inductor) of the model's forward; eager fallback
    trace_ranks: bool = False  # each rank writes its batch indices + final weights to output_dir/ranks/


@dataclass
class HubConfig:
    """Where to push the release bundle (optional)."""

    push_to_hub: str | None = None  # user/repo
    private: bool = False
    revision: str | None = None


@dataclass
class RunConfig:
    """Everything one training run needs; saved next to the weights."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    hub: HubConfig = field(default_factory=HubConfig)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _check_value(value: Any, tp: Any, key: str) -> Any:
    """Return value converted to tp, or raise ConfigError naming key."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in get_args(tp):
            try:
                return _check_value(value, option, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{key}: {value!r} is not a valid {_type_name(tp)}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{key}: expected null, got {value!r}")
    if origin is Literal:
        if value is False and "no" in get_args(tp):  # YAML 1.1 reads a bare `no` as false
            return "no"
        if value in get_args(tp):
            return value
        raise ConfigError(f"{key}: {value!r} is not one of {list(get_args(tp))}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = get_args(tp) or (Any,)
        return [_check_value(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:  # YAML 1.1 reads "1e-3" (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if tp in (int, str, bool) and type(value) is tp:
        return value
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass cls from a nested dict, refusing unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{unknown[0]!s}; known keys under "
                          f"{prefix or 'the top level'}: {', '.join(sorted(names))}")
    kwargs = {k: _check_value(v, hints[k], f"{prefix}{k}") for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config as a plain nested dict (JSON/YAML-safe)."""
    return dataclasses.asdict(cfg)


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply one `a.b.c=value` override in place; value is parsed as YAML (1, 1e-3, true, [a, b])."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} must look like key=value (e.g. train.max_steps=100)")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a section")
    node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None


def load_config(path: str | Path | None, overrides: list[str] | None = None,
                cls: type[T] = RunConfig) -> T:
    """Load a YAML preset (or defaults when path is None), apply overrides, validate strictly."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        data = loaded
    for override in overrides or []:
        apply_override(data, override)
    return from_dict(cls, data)


def dump_yaml(cfg: Any) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
