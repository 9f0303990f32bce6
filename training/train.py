#!/usr/bin/env python
"""Train any facelab model on any dataset and background variant, on one CPU or many GPUs.

    accelerate launch training/train.py --config training/configs/vae_synthfaces64.yaml \
        [--set train.max_steps=2000 data.background=grey ...] [--resume latest] [--push-to-hub user/repo]
    python training/train.py --config ... --dry-run        # print the resolved config and exit
    accelerate launch --multi_gpu --num_processes 2 training/train.py ...   # DDP (gloo on CPU)

Writes under train.output_dir: config.yaml, logs/ (TensorBoard), samples/, checkpoints/ and the
release bundle in bundle/ (weights, facelab.json, model card, samples.png).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python training/train.py` from anywhere imports this checkout
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from accelerate.utils import set_seed  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from facelab.config import ConfigError, RunConfig, dump_yaml, to_dict  # noqa: E402
from facelab.hub import BundleError, push_bundle  # noqa: E402
from training.checkpoints import (TrainerState, checkpoint_root, latest_checkpoint, load_checkpoint,  # noqa: E402
                                  resolve_resume, save_checkpoint)
from training.data import EpochSampler, epoch_batches, fixed_batch, make_dataloader, make_dataset  # noqa: E402
from training.ema import WeightAverage, averaged  # noqa: E402
from training.outputs import lineage, write_bundle, write_samples  # noqa: E402
from training.speed import apply_speed_options, batch_channels_last  # noqa: E402
from training.steps import Trainables, encoder_step, gan_step, grad_clip_for  # noqa: E402
from training.train_utils import (Meter, TrainingError, build_accelerator, check_finite,  # noqa: E402
                                  check_finite_weights, flat_hparams, init_weights, make_schedulers, reduce_scalars,
                                  release_accelerator, resolve_config, resolve_model_params, sync_buffers,
                                  write_rank_trace)


@dataclass
class Run:
    """Everything the loop needs, built once."""

    cfg: RunConfig
    accelerator: Accelerator
    dataset: Any
    loader: Any
    sampler: EpochSampler
    parts: Trainables
    model: Any  # the unwrapped model: sampling, hooks, saving
    fixed: dict[str, torch.Tensor]
    step_fn: Callable[..., dict[str, torch.Tensor]]
    history: list[dict[str, Any]]  # earlier stages of a fine-tuned run (train.init_from), oldest first
    average: WeightAverage | None = None  # train.ema_decay: sampled and released instead of the raw weights
    levers: list[str] = field(default_factory=list)  # speed levers in effect (training/speed.py)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line: --config, --set, --dry-run, --resume, --push-to-hub [--private] [--revision]."""
    p = argparse.ArgumentParser(description="Train a facelab model (VAE, cVAE, HVAE, DCGAN, StyleGAN).")
    p.add_argument("--config", help="YAML preset, e.g. training/configs/vae_synthfaces64.yaml (default: defaults)")
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override config keys, e.g. --set train.max_steps=100 data.background=grey")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config as YAML and exit")
    p.add_argument("--resume", metavar="latest|PATH", help="continue from the newest checkpoint or a folder")
    p.add_argument("--push-to-hub", metavar="USER/REPO", help="upload the release bundle to this Hub repo")
    p.add_argument("--private", action="store_true", help="create the Hub repo private")
    p.add_argument("--revision", help="Hub branch to push to")
    return p.parse_args(argv)


def load_run_config(args: argparse.Namespace) -> RunConfig:
    """The resolved RunConfig: preset, overrides, Hub flags; model params checked by building it."""
    overrides = list(args.overrides)
    if args.push_to_hub:
        overrides.append(f"hub.push_to_hub={args.push_to_hub}")
    if args.private:
        overrides.append("hub.private=true")
    cfg = resolve_config(args.config, overrides)
    if args.revision:
        cfg.hub.revision = args.revision  # set directly: "1.0" must stay a string, not YAML's float
    return cfg


def build(cfg: RunConfig, accelerator: Accelerator) -> Run:
    """Dataset, model, optimizers, schedulers and dataloader, prepared by accelerate."""
    set_seed(cfg.train.seed)  # identical initial weights on every rank
    dataset = make_dataset(cfg.data)
    model = resolve_model_params(cfg, dataset)
    # before prepare, so every rank starts from the same weights
    start = init_weights(model, cfg.train.init_from) if cfg.train.init_from else None
    levers = apply_speed_options(model, cfg.train.channels_last, cfg.train.compile, accelerator.print)
    optimizers = model.configure_optimizers(cfg.train.learning_rate)
    schedulers = make_schedulers(cfg, optimizers)
    loader, sampler = make_dataloader(dataset, cfg.train.batch_size, cfg.train.seed, cfg.data.num_workers)
    names, k = list(optimizers), len(optimizers)
    prepared = accelerator.prepare(model, *optimizers.values(), *schedulers.values(), loader)
    parts = Trainables(model=prepared[0], optimizers=dict(zip(names, prepared[1:1 + k])),
                       schedulers=dict(zip(names, prepared[1 + k:1 + 2 * k])),
                       grad_clip=grad_clip_for(cfg.train.gradient_clip, model))
    set_seed(cfg.train.seed, device_specific=True)  # different training noise on each rank
    unwrapped = accelerator.unwrap_model(prepared[0])
    average = WeightAverage(unwrapped, cfg.train.ema_decay) if cfg.train.ema_decay is not None else None
    return Run(cfg=cfg, accelerator=accelerator, dataset=dataset, loader=prepared[-1], sampler=sampler,
               parts=parts, model=unwrapped, fixed=fixed_batch(dataset, cfg.train.num_samples),
               step_fn=gan_step if model.is_gan else encoder_step, history=lineage(start, cfg.train.init_from),
               average=average, levers=levers)


def start_state(run: Run, resume_from: Path | None) -> TrainerState:
    """A fresh TrainerState, or the one of the checkpoint being resumed (weights, RNG and all)."""
    if resume_from is None:
        return TrainerState(batch_size=run.cfg.train.batch_size)
    state = load_checkpoint(run.accelerator, resume_from)
    if state.batch_size != run.cfg.train.batch_size:
        raise ConfigError(f"train.batch_size={run.cfg.train.batch_size} but {resume_from} was trained with "
                          f"{state.batch_size}: the data order would not continue")
    run.accelerator.print(f"resumed from {resume_from} at step {state.step}")
    if run.average is not None and not run.average.load(resume_from):
        run.accelerator.print(f"{resume_from} holds no weight average: train.ema_decay starts one from its weights")
    return state


def periodic(run: Run, state: TrainerState, meter: Meter, last: dict[str, float], done: bool) -> None:
    """Every N steps: tracker scalars, sample grids, checkpoints (and all three at the end)."""
    t, acc = run.cfg.train, run.accelerator
    if state.step % t.log_every == 0 or done:
        last.clear()
        last.update(meter.pop())
        lrs = {f"lr/{name}": s.get_last_lr()[0] for name, s in run.parts.schedulers.items()}
        acc.log({**last, **lrs}, step=state.step)
    if t.sample_every and (state.step % t.sample_every == 0 or done) and acc.is_main_process:
        with averaged(run.average):
            write_samples(run.model, run.cfg, run.fixed, state.step)
    if t.checkpoint_every and (state.step % t.checkpoint_every == 0 or done):
        check_finite_weights(run.model, state.step, state.last_checkpoint)
        save_checkpoint(acc, t.output_dir, state, t.checkpoints_total_limit,
                        extra=run.average.save if run.average is not None else None)


def train_loop(run: Run, state: TrainerState) -> dict[str, float]:
    """Train from state.step to train.max_steps; returns the last logged (process-averaged) scalars."""
    t, acc = run.cfg.train, run.accelerator
    meter, last = Meter(), {}
    if state.step >= t.max_steps:
        return last
    resumed_at, clock = state.seconds, time.perf_counter()
    with tqdm(total=t.max_steps, initial=state.step, disable=not acc.is_local_main_process,
              desc=run.model.kind, dynamic_ncols=True) as progress:
        for batch in epoch_batches(acc, run.loader, run.sampler, state.step):
            index = batch.pop("index")
            if t.channels_last:
                batch = batch_channels_last(batch)
            if t.trace_ranks:
                write_rank_trace(acc, t.output_dir, state.step, index)
            logs = run.step_fn(acc, run.parts, batch, state.step, run.model)
            state.step += 1
            state.images_seen += t.batch_size
            state.seconds = resumed_at + time.perf_counter() - clock
            if run.average is not None:
                run.average.update()
            if hasattr(run.model, "after_step"):  # GANs: EMA, progressive level and fade-in α
                hooks = run.model.after_step(state.step, state.images_seen)
                logs.update({k: torch.tensor(float(v)) for k, v in hooks.items()})
            values = reduce_scalars(acc, logs)
            check_finite(values, state.step, state.last_checkpoint)
            meter.add(values)
            progress.update(1)
            progress.set_postfix({k: f"{values[k]:.4g}" for k in ("loss", "d_loss", "g_loss") if k in values})
            done = state.step >= t.max_steps
            periodic(run, state, meter, last, done)
            if done:
                break
    return last


def finish(run: Run, state: TrainerState, final: dict[str, float]) -> Path | None:
    """Main process: write the release bundle; every rank: its trace weights when asked."""
    acc = run.accelerator
    sync_buffers(acc, run.model)
    if run.cfg.train.trace_ranks:
        write_rank_trace(acc, run.cfg.train.output_dir, state.step, None, run.model)
    acc.wait_for_everyone()
    if not acc.is_main_process:
        return None
    lrs = {name: opt.param_groups[0].get("initial_lr", opt.param_groups[0]["lr"])
           for name, opt in run.parts.optimizers.items()}
    training = {"steps": state.step, "images_seen": state.images_seen, "num_processes": acc.num_processes,
                "mixed_precision": run.cfg.train.mixed_precision, "device": str(acc.device),
                "seconds": round(state.seconds, 2), "learning_rates": lrs, "speed_levers": run.levers}
    if run.average is not None:
        training["ema_decay"] = run.average.decay
    if run.history:  # a continued bundle: what its weights have seen over every stage
        for key in ("images_seen", "seconds"):
            earlier = sum(float((s.get("training") or {}).get(key) or 0) for s in run.history)
            training[f"{key}_all_stages"] = round(earlier + float(training[key]), 2)
    with averaged(run.average):  # the release holds the averaged weights, checked like the raw ones
        check_finite_weights(run.model, state.step, state.last_checkpoint)
        folder = write_bundle(run.model, run.cfg, run.dataset, run.fixed, final, training, run.history)
    acc.print(f"bundle written to {folder}")
    return folder


def push(cfg: RunConfig, folder: Path) -> int:
    """Upload the bundle when hub.push_to_hub is set; a clear error (bundle kept) when it cannot."""
    try:
        url = push_bundle(folder, cfg.hub.push_to_hub, private=cfg.hub.private, revision=cfg.hub.revision)
    except BundleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"pushed to {url}")
    return 0


def train(cfg: RunConfig, resume: str | None) -> int:
    """Build, restore, train, release; the accelerator is released whatever happens."""
    out = Path(cfg.train.output_dir)
    resume_from = resolve_resume(resume, out) if resume else None
    if resume is None and latest_checkpoint(checkpoint_root(out)) is not None:
        raise ConfigError(f"train.output_dir {out} holds checkpoints of an earlier run: pass --resume latest "
                          "to continue it, or choose another train.output_dir")
    from facelab.models import MODELS

    accelerator = build_accelerator(cfg, MODELS[cfg.model.kind].is_gan)
    if resume and resume_from is None:
        accelerator.print(f"--resume {resume}: no checkpoint under {out} yet, starting from step 0")
    try:
        run = build(cfg, accelerator)
        if accelerator.is_main_process:
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.yaml").write_text(dump_yaml(cfg))
            if hasattr(run.dataset, "file_report"):  # real datasets: bad files counted by reason
                accelerator.print(f"data files: {run.dataset.file_summary()}")
                (out / "data_files.json").write_text(json.dumps(run.dataset.file_report(), indent=2) + "\n")
        accelerator.init_trackers("facelab", config=flat_hparams(to_dict(cfg)))
        state = start_state(run, resume_from)
        final = train_loop(run, state)
        folder = finish(run, state, final)
    finally:
        release_accelerator(accelerator)
    return push(cfg, folder) if folder is not None and cfg.hub.push_to_hub else 0


def main(argv: list[str] | None = None) -> int:
    """Parse, resolve the config (or print it with --dry-run), train; returns the exit code."""
    args = parse_args(argv)
    try:
        cfg = load_run_config(args)
        if args.dry_run:
            print(dump_yaml(cfg), end="")
            return 0
        return train(cfg, args.resume)
    except (ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
