"""Building blocks of training/train.py: config resolution, the Accelerator, optimizers, logging."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from accelerate.utils import ProjectConfiguration

from facelab.config import ConfigError, RunConfig, load_config
from facelab.models.schedules import LR_SCHEDULES, make_lr_scheduler

TRACKERS = ("tensorboard", "wandb", "comet_ml", "aim", "mlflow", "clearml", "dvclive", "swanlab",
            "trackio", "all", "none")


#: conditional-model params that are filled from the dataset, not from constructor defaults
_FROM_DATA = ("num_attributes", "attribute_names")


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss or weights); the message says where and what to resume."""


def _plain(value: Any) -> Any:
    """Tuples (model config defaults) -> lists, recursively, so the config dumps as YAML."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def build_model_checked(kind: str, params: dict[str, Any]) -> torch.nn.Module:
    """build_model with every refusal turned into a ConfigError naming model.kind/model.params."""
    from facelab.models import MODELS, build_model

    if kind not in MODELS:
        raise ConfigError(f"model.kind: unknown model {kind!r}; known: {', '.join(MODELS)}")
    try:
        return build_model(kind, params)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model.params ({kind}): {err}") from err


def resolve_model_params(cfg: RunConfig, dataset: Any = None) -> torch.nn.Module:
    """Check model params against the data, build the model and write its full params into cfg.

    image_size defaults to data.image_size; a conditional model's attribute count and names come
    from the dataset when one is given. The resolved params are every constructor argument, so
    the saved config.yaml reproduces the run even if code defaults change later.
    """
    params = dict(cfg.model.params)
    size = params.setdefault("image_size", cfg.data.image_size)
    if size != cfg.data.image_size:
        raise ConfigError(f"model.params.image_size={size} differs from data.image_size={cfg.data.image_size}")
    if cfg.model.kind == "cvae" and dataset is not None:
        names = list(dataset.attribute_names)
        if params.get("num_attributes", len(names)) != len(names):
            raise ConfigError(f"model.params.num_attributes={params['num_attributes']} but the dataset has "
                              f"{len(names)} attributes")
        params.update(num_attributes=len(names), attribute_names=names)
    model = build_model_checked(cfg.model.kind, params)
    if cfg.train.ema_decay is not None and model.is_gan:
        raise ConfigError(f"train.ema_decay is for the VAE family; {cfg.model.kind} keeps its own EMA generator "
                          "(StyleGAN: model.params.ema_half_life_images)")
    resolved = {k: v for k, v in dict(model.config).items() if not k.startswith("_")}
    # attribute fields come from the dataset at train time: a default here would later clash with it
    cfg.model.params = _plain({k: v for k, v in resolved.items() if k not in _FROM_DATA or k in params})
    return model


def check_train_config(cfg: RunConfig) -> None:
    """Refuse train settings that are well-typed but unusable, naming the key."""
    t = cfg.train
    if t.lr_scheduler not in LR_SCHEDULES:
        raise ConfigError(f"train.lr_scheduler: {t.lr_scheduler!r} is not one of {', '.join(LR_SCHEDULES)}")
    if t.report_to not in TRACKERS:
        raise ConfigError(f"train.report_to: {t.report_to!r} is not one of {', '.join(TRACKERS)}")
    for key in ("max_steps", "batch_size", "log_every", "num_samples"):
        if getattr(t, key) < 1:
            raise ConfigError(f"train.{key} must be >= 1, got {getattr(t, key)}")
    for key in ("sample_every", "checkpoint_every", "lr_warmup_steps"):
        if getattr(t, key) < 0:
            raise ConfigError(f"train.{key} must be >= 0 (0 = never), got {getattr(t, key)}")
    if t.learning_rate is not None and not t.learning_rate > 0:
        raise ConfigError(f"train.learning_rate must be > 0, got {t.learning_rate}")
    if t.ema_decay is not None and not 0.0 < t.ema_decay < 1.0:
        raise ConfigError(f"train.ema_decay must be in (0, 1) (e.g. 0.999), got {t.ema_decay}")


def resolve_config(path: str | None, overrides: list[str]) -> RunConfig:
    """Load preset + overrides strictly, validate train settings and model params (model built once)."""
    cfg = load_config(path, overrides)
    check_train_config(cfg)
    resolve_model_params(cfg)
    return cfg


def launcher_processes(pid: int | None = None) -> int:
    """--num_processes of the `accelerate launch` that started this process (1 when not launched so).

    accelerate's single-process launcher passes nothing on, so the parent's command line (Linux /proc)
    is the only place the request survives.
    """
    try:
        args = Path(f"/proc/{pid or os.getppid()}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return 1
    cli = any(a.endswith("accelerate") for a in args[:2]) and "launch" in args[:3]
    if not (cli or "accelerate.commands.launch" in args[:3]):  # `accelerate launch` or `python -m ...`
        return 1
    for i, a in enumerate(args):
        value = a.split("=", 1)[1] if a.startswith("--num_processes=") else (
            args[i + 1] if a == "--num_processes" and i + 1 < len(args) else None)
        if value is not None:
            return int(value) if value.isdigit() else 1
    return 1


def build_accelerator(cfg: RunConfig, is_gan: bool) -> Accelerator:
    """Accelerator: CPU (gloo) without CUDA, global batch split across ranks, trackers in output_dir."""
    out = Path(cfg.train.output_dir)
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)] if is_gan else []
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=cfg.train.mixed_precision,
        log_with=None if cfg.train.report_to == "none" else cfg.train.report_to,
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
        dataloader_config=DataLoaderConfiguration(split_batches=True),
        kwargs_handlers=handlers,
    )
    asked, started = launcher_processes(), accelerator.num_processes
    if asked > started:
        release_accelerator(accelerator)
        raise ConfigError(f"accelerate launch asked for {asked} processes but started {started}: "
                          "without --multi_gpu it runs one process (on CPU too). Launch several with "
                          f"`accelerate launch --multi_gpu --num_processes {asked} training/train.py ...` "
                          "(gloo on CPU)")
    if cfg.train.batch_size % accelerator.num_processes:
        raise ConfigError(f"train.batch_size={cfg.train.batch_size} must be a multiple of the number of "
                          f"processes ({accelerator.num_processes}): the global batch is split between them")
    return accelerator


def make_schedulers(cfg: RunConfig, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Any]:
    """One LR scheduler per optimizer (diffusers names, or seed 002's inverse_sigmoid)."""
    return {name: make_lr_scheduler(opt, cfg.train.lr_scheduler, cfg.train.lr_warmup_steps, cfg.train.max_steps)
            for name, opt in optimizers.items()}


def flat_hparams(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> flat {a.b: scalar} for tracker hparams (lists and None become strings)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_hparams(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


class Meter:
    """Running means of logged scalars between two logging steps."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict[str, float]) -> None:
        """Accumulate one step's values."""
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1

    def pop(self) -> dict[str, float]:
        """The means since the last pop, then reset."""
        means = {k: self.sums[k] / self.counts[k] for k in self.sums}
        self.sums, self.counts = {}, {}
        return means


def reduce_scalars(accelerator: Accelerator, logs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Mean of each scalar over all processes (one all-reduce), as floats."""
    keys = sorted(logs)
    vec = torch.stack([logs[k].to(accelerator.device, torch.float32) for k in keys])
    vec = accelerator.reduce(vec, reduction="mean") if accelerator.num_processes > 1 else vec
    return dict(zip(keys, vec.tolist()))


def check_finite(values: dict[str, float], step: int, last_checkpoint: str | None) -> None:
    """Stop with the step and the last good checkpoint named when any logged scalar is NaN/inf."""
    # a non-finite grad norm is the HVAE guard's business (it skips that update and goes on)
    bad = {k: v for k, v in values.items() if k != "grad_norm" and not math.isfinite(v)}
    if bad:
        where = (f"last good checkpoint: {last_checkpoint} (continue with --resume {last_checkpoint} and a "
                 "lower learning rate)" if last_checkpoint else "no checkpoint was saved before it")
        shown = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
        raise TrainingError(f"non-finite loss at step {step} ({shown}); training stopped, {where}")


def check_finite_weights(model: torch.nn.Module, step: int, last_checkpoint: str | None) -> None:
    """Refuse to checkpoint or release weights that are no longer finite."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            where = f"last good checkpoint: {last_checkpoint}" if last_checkpoint else "no good checkpoint exists"
            raise TrainingError(f"non-finite weights ({name}) after step {step}; training stopped, {where}")


def write_rank_trace(accelerator: Accelerator, output_dir: str | Path, step: int,
                     index: torch.Tensor | None, model: torch.nn.Module | None = None) -> None:
    """train.trace_ranks: each rank appends the dataset indices of its batch (or writes its weights).

    Files: output_dir/ranks/rank<i>.jsonl ({"step", "indices"} per step) and rank<i>.safetensors,
    so a test can show the global batch is split, not duplicated, and that ranks end identical.
    """
    import json

    from safetensors.torch import save_file

    folder = Path(output_dir) / "ranks"
    folder.mkdir(parents=True, exist_ok=True)
    rank = accelerator.process_index
    if index is not None:
        with open(folder / f"rank{rank}.jsonl", "a") as fh:
            fh.write(json.dumps({"step": step, "indices": index.tolist()}) + "\n")
    if model is not None:
        weights = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        save_file(weights, str(folder / f"rank{rank}.safetensors"))


def release_accelerator(accelerator: Accelerator) -> None:
    """End trackers and the process group; forget accelerate's singleton state when single-process.

    Resetting lets one Python process call main() again with another mixed precision (tests,
    notebooks); launched multi-process runs exit right after, so nothing is reset there.
    """
    from accelerate.state import AcceleratorState, GradientState

    single = accelerator.num_processes == 1
    accelerator.end_training()
    if single:
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()


def sync_buffers(accelerator: Accelerator, model: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running stats) to every rank, as DDP does before each forward.

    After the last step each rank still holds running stats from its own half of the batch;
    parameters are already identical (all-reduced gradients).
    """
    if accelerator.num_processes == 1:
        return
    from accelerate.utils import broadcast

    for buf in model.buffers():
        buf.copy_(broadcast(buf.detach().clone(), from_process=0))


def init_weights(model: torch.nn.Module, source: str) -> dict[str, Any]:
    """train.init_from: copy a bundle's weights (safetensors, folder or Hub id) into the freshly built model.

    Fine-tuning keeps the run's own config (β, loss weights, data), so only the networks must match:
    the bundle's kind and every parameter/buffer name and shape. Returns the bundle's facelab.json
    metadata, whose training history the new bundle carries on (training.outputs.lineage).
    """
    from facelab.hub import BundleError, load_bundle

    try:
        bundle = load_bundle(source, with_probes=False)
    except BundleError as err:
        raise ConfigError(f"train.init_from: {err}") from err
    if bundle.meta.get("kind") != model.kind:
        raise ConfigError(f"train.init_from: {source} holds a {bundle.meta.get('kind')} but model.kind is {model.kind}")
    theirs, ours = bundle.model.state_dict(), model.state_dict()
    # state the model can rebuild from the rest (e.g. a DCGAN's EMA generator, new in this run)
    derived = [k for k in ours if k not in theirs and k.startswith(tuple(getattr(model, "derived_state", ())))]
    wrong = [k for k in ours if (k not in theirs and k not in derived) or (k in theirs and theirs[k].shape != ours[k].shape)]
    extra = [k for k in theirs if k not in ours]
    if wrong or extra:
        raise ConfigError(f"train.init_from: {source}'s networks differ from model.params ({len(wrong)} missing or "
                          f"reshaped, {len(extra)} extra, e.g. {(wrong + extra)[0]}): use the bundle's architecture "
                          "params (base_channels, latent_dim, image_size, ...)")
    model.load_state_dict(theirs, strict=not derived)
    if derived:
        model.reset_derived_state()
    if hasattr(model, "continue_stage"):  # GANs: schedules and EMA count images across stages
        model.continue_stage()
    return bundle.meta
