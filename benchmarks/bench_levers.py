#!/usr/bin/env python
"""What each CPU lever buys facelab's CPU presets (GANs, HVAE): training images/s, variants interleaved.

    python benchmarks/bench_levers.py                   # every preset, every lever
    python benchmarks/bench_levers.py --only stylegan --rounds 3

Each variant is a change of one thing against the preset's network and batch with its speed levers
off (training/configs/dcgan_synthfaces32_cpu.yaml, stylegan_synthfaces32_cpu.yaml,
hvae_synthfaces64_cpu.yaml; the presets then switch on the train.compile / train.channels_last levers
this table picks): threads, batch size, channels_last, torch.compile, lazy R1 interval (StyleGAN), the
discriminator layout before the pooled second conv (StyleGAN), channel width, and for the HVAE the
dense upsampler and decoder depth (what those design choices cost per step). Variants are timed round-robin — round r times every variant once —
so machine load hits them alike; the table gives the median over rounds as images/s and as a ratio
to the preset. Training steps are the real ones (both phases, optimizers, after_step's EMA) on
random images, timed over whole lazy-R1 periods; torch.compile's one-off compile time is reported apart. mixed precision is left out
on purpose: this AVX2 CPU has no native bf16 (10–50× slower).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_models import make_batch, pin_full_resolution, train_step  # noqa: E402
from facelab.config import load_config  # noqa: E402
from facelab.models import MODELS  # noqa: E402
from facelab.models.stylegan_layers import EqualConv2d  # noqa: E402

PRESETS = {"dcgan": "training/configs/dcgan_synthfaces32_cpu.yaml",
           "stylegan": "training/configs/stylegan_synthfaces32_cpu.yaml",
           "hvae": "training/configs/hvae_synthfaces64_cpu.yaml"}


@dataclass
class Variant:
    """One lever setting: model params changed, batch, threads, memory format, compile."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    batch_scale: float = 1.0
    threads: int = 1
    channels_last: bool = False
    compile: bool = False
    edit: Callable[[nn.Module], None] | None = None


def old_discriminator_layout(model: nn.Module) -> None:
    """The layout before this preset: both convs at full resolution, then the pool."""
    for block in model.discriminator.blocks:
        conv1, _, conv2 = block
        block._modules.clear()
        block.add_module("0", conv1)
        block.add_module("1", EqualConv2d(conv2.weight.shape[1], conv2.weight.shape[0], 3))
        block.add_module("2", nn.AvgPool2d(2))


def variants(kind: str, params: dict[str, Any]) -> list[Variant]:
    """The preset and one-lever changes of it."""
    out = [Variant("preset, speed levers off (1 thread)"), Variant("2 threads", threads=2), Variant("batch ×0.5", batch_scale=0.5),
           Variant("batch ×2", batch_scale=2.0), Variant("channels_last", channels_last=True),
           Variant("torch.compile", compile=True),
           Variant("channels_last + torch.compile", channels_last=True, compile=True)]
    if kind == "stylegan":
        out += [Variant("R1 every step", {"r1_interval": 1}), Variant("R1 every 4", {"r1_interval": 4}),
                Variant("no R1", {"r1_gamma": 0.0}), Variant("old D layout", edit=old_discriminator_layout),
                Variant("channel_max ×2", {"channel_max": 2 * params["channel_max"],
                                           "channel_base": 2 * params["channel_base"]}),
                Variant("8 mapping layers", {"mapping_layers": 8})]
    elif kind == "hvae":
        dense = params.get("upsample", "nearest") == "dense"
        out += [Variant("upsample nearest" if dense else "upsample dense",
                        {"upsample": "nearest" if dense else "dense"}),
                Variant("dec_blocks 1", {"dec_blocks": 1}), Variant("width ×0.5", {"width": params["width"] // 2})]
    else:
        out += [Variant("ngf = ndf ×2", {"ngf": 2 * params["ngf"], "ndf": 2 * params["ndf"]})]
    return out


def build(kind: str, size: int, params: dict[str, Any], v: Variant, batch: int) -> tuple[Any, dict, Callable]:
    """Model, batch and a one-step closure for a variant."""
    torch.manual_seed(0)
    model = MODELS[kind](image_size=size, **{**params, **v.params}).train()
    if v.edit:
        v.edit(model)
    pin_full_resolution(model)
    data = make_batch(model, batch, size, torch.device("cpu"))
    if v.channels_last:
        model = model.to(memory_format=torch.channels_last)
        data["image"] = data["image"].contiguous(memory_format=torch.channels_last)
    opts = model.configure_optimizers()
    runner = torch.compile(model) if v.compile else model
    state = {"step": 1}  # counting on: lazy R1 lands once per r1_interval steps, as in training

    def step() -> None:
        train_step(runner, opts, data, state["step"], nullcontext)  # includes after_step (EMA)
        state["step"] += 1
    return model, data, step


def time_steps(step: Callable, threads: int, n: int) -> float:
    """Seconds per step over n steps at the given thread count."""
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


def bench(kind: str, rounds: int, steps: int) -> list[str]:
    """Markdown rows for one preset: images/s (median over rounds) and ratio to the preset."""
    cfg = load_config(ROOT / PRESETS[kind])
    params, size, batch = dict(cfg.model.params), int(cfg.data.image_size), int(cfg.train.batch_size)
    # Time whole lazy-R1 periods: any r1_interval consecutive steps hold exactly one R1 step, so a
    # window of a multiple of it charges each variant its true share of R1 (a shorter one may hold none).
    period = int(params.get("r1_interval", 1) or 1)
    steps = -(-steps // period) * period
    runs, compile_s = [], {}
    for v in variants(kind, params):
        b = int(batch * v.batch_scale)
        _, _, step = build(kind, size, params, v, b)
        t0 = time.perf_counter()
        time_steps(step, v.threads, 2)  # warm-up; compiles when asked
        if v.compile:
            compile_s[v.name] = time.perf_counter() - t0
        runs.append((v, b, step, []))
    failed: dict[str, str] = {}
    for _ in range(rounds):
        for v, b, step, times in runs:
            if v.name in failed:
                continue
            try:
                times.append(b / time_steps(step, v.threads, steps))
            except RuntimeError as err:  # e.g. torch.compile cannot train through R1's double backward
                failed[v.name] = str(err).strip().splitlines()[-1][:120]
    base = statistics.median(runs[0][3])
    rows = []
    for v, b, _, times in runs:
        if v.name in failed:
            rows.append(f"| {kind} | {v.name} | {b} | {v.threads} | fails: {failed[v.name]} | | |")
            continue
        ips = statistics.median(times)
        extra = f" (compile {compile_s[v.name]:.0f} s)" if v.name in compile_s else ""
        per_core = f"{ips / v.threads:.1f}"
        rows.append(f"| {kind} | {v.name}{extra} | {b} | {v.threads} | {ips:.1f} | {per_core} | {ips / base:.2f}× |")
    return rows


def main(argv: list[str] | None = None) -> int:
    """Time every lever of the chosen presets; print one markdown table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=sorted(PRESETS), help="one preset")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=3, help="timed steps per variant per round (rounded up to a "
                   "multiple of the preset's lazy-R1 interval)")
    args = p.parse_args(argv)
    print("| preset | lever | batch | threads | images/s | images/s per thread | vs preset |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for kind in [args.only] if args.only else list(PRESETS):
        print("\n".join(bench(kind, args.rounds, args.steps)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
