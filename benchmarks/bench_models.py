"""Training throughput and FLOPs of every facelab model (default configs), fp32 and bf16 autocast.

For each model in facelab.models.MODELS (or the classes importable from facelab.models.{vae,hvae,
dcgan,stylegan} when there is no registry yet): a few warm-up steps, then timed steps of
forward + backward + optimizer step on random batches (GANs: one discriminator step and one
generator step per batch, plus after_step, e.g. StyleGAN's EMA). FLOPs per image are counted
with torch.utils.flop_counter.FlopCounterMode over one forward + backward (both phases for GANs).
Prints a markdown table.

    .venv/bin/python benchmarks/bench_models.py                 # 64×64, batch 64
    .venv/bin/python benchmarks/bench_models.py --quick         # 32×32, batch 8, one timed step
    .venv/bin/python benchmarks/bench_models.py --precisions fp32 --models vae,dcgan
    .venv/bin/python benchmarks/bench_models.py --presets --threads 1 --precisions fp32   # the shipped recipes

--presets times the networks users train: each CPU preset the shipped bundles come from
(PRESETS: its model params, resolution and batch size) instead of each class's defaults at --size.
The "% of peak" column compares GFLOP per CPU-second per thread with the matmul peak measured the
same way in the same run, so other processes on the machine move neither side much.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

FALLBACK_CLASSES = {"vae": ("vae", "VAE"), "cvae": ("vae", "ConditionalVAE"), "hvae": ("hvae", "HierarchicalVAE"),
                    "dcgan": ("dcgan", "DCGAN"), "stylegan": ("stylegan", "StyleGAN")}


PRESETS = {"vae": "vae_synthfaces64", "cvae": "cvae_synthfaces64", "hvae": "hvae_synthfaces64_cpu",
           "dcgan": "dcgan_synthfaces32_cpu", "stylegan": "stylegan_synthfaces32_cpu"}


def build_preset(name: str, device: torch.device) -> tuple[torch.nn.Module, int, int]:
    """(model, image size, batch size) of training/configs/<PRESETS[name]>.yaml, at full resolution."""
    from facelab.config import load_config
    from training.train_utils import resolve_model_params

    cfg = load_config(Path(__file__).resolve().parents[1] / "training" / "configs" / f"{PRESETS[name]}.yaml")
    model = resolve_model_params(cfg).to(device).train()
    pin_full_resolution(model)
    return model, cfg.data.image_size, cfg.train.batch_size


def discover_models() -> dict[str, type]:
    """The registry if it exists, else whichever model classes import."""
    try:
        from facelab.models import MODELS
        return dict(MODELS)
    except ImportError:
        pass
    found = {}
    for name, (module, cls) in FALLBACK_CLASSES.items():
        try:
            found[name] = getattr(importlib.import_module(f"facelab.models.{module}"), cls)
        except (ImportError, AttributeError):
            continue
    return found


def build(cls: type, size: int, device: torch.device) -> torch.nn.Module:
    """Default config at this image size, at full resolution for progressive models."""
    model = cls(image_size=size).to(device).train()
    pin_full_resolution(model)
    return model


def pin_full_resolution(model: torch.nn.Module) -> None:
    """Progressive models (StyleGAN): time the full-resolution network, not the 4×4 start."""
    if hasattr(model, "set_progress") and hasattr(model, "max_level"):
        model.set_progress(model.max_level, 1.0)


def make_batch(model: torch.nn.Module, n: int, size: int, device: torch.device, seed: int = 0) -> dict:
    """Random images in [-1, 1] (and binary attributes for conditional models)."""
    g = torch.Generator().manual_seed(seed)
    batch = {"image": (torch.rand(n, 3, size, size, generator=g) * 2 - 1).to(device)}
    if getattr(model, "is_conditional", False):
        a = int(model.config.num_attributes)
        batch["attributes"] = torch.randint(0, 2, (n, a), generator=g).float().to(device)
    return batch


def phases(model: torch.nn.Module) -> list[tuple[str | None, str]]:
    """(phase argument, optimizer key) pairs run per batch."""
    if getattr(model, "is_gan", False):
        return [("discriminator", "discriminator"), ("generator", "generator")]
    return [(None, "model")]


def train_step(model: torch.nn.Module, opts: dict, batch: dict, step: int, autocast) -> None:
    """One training step: per phase, forward under autocast, fp32 backward, optimizer step."""
    for phase, key in phases(model):
        kwargs = {} if phase is None else {"phase": phase}
        with autocast():
            out = model(batch, step, **kwargs)
        opt = opts[key] if key in opts else next(iter(opts.values()))
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
    if hasattr(model, "after_step"):  # EMA etc. are part of a training step's cost
        model.after_step(step, (step + 1) * batch["image"].shape[0])
        pin_full_resolution(model)  # after_step moves progressive models back by images seen


def images_per_second(model: torch.nn.Module, batch: dict, precision: str, warmup: int,
                      steps: int) -> tuple[float, float]:
    """Training throughput (images per wall second, per CPU-second of this process) over `steps`
    timed steps after `warmup` untimed ones; the CPU figure is the one other processes barely move."""
    device = batch["image"].device
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if precision == "bf16" else nullcontext
    opts = model.configure_optimizers()
    for step in range(warmup):
        train_step(model, opts, batch, step, autocast)
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for step in range(warmup, warmup + steps):
        train_step(model, opts, batch, step, autocast)
    _sync(device)
    if not at_full_resolution(model):
        raise RuntimeError(f"{type(model).__name__} trained below its top resolution: the timing would not "
                           "match the FLOPs counted at full resolution")
    n = steps * batch["image"].shape[0]
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


class _GlobalOnly:
    """Stand-in for FlopCounterMode's per-module tracker: its backward hooks assert on tensors that
    require grad without a grad_fn (e.g. StyleGAN's no-grad fakes); we only need the global total."""

    parents = {"Global"}

    def __enter__(self) -> "_GlobalOnly":
        return self

    def __exit__(self, *exc) -> None:
        return None


def flops_per_image(model: torch.nn.Module, batch: dict) -> float:
    """FLOPs of forward + backward per image (all phases), counted by FlopCounterMode."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    with counter:
        for phase, _ in phases(model):
            kwargs = {} if phase is None else {"phase": phase}
            model(batch, 1, **kwargs)["loss"].backward()  # step 1: skips lazy regularisers of step 0
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch["image"].shape[0]


def matmul_peak_gflops(device: torch.device, n: int = 2048, reps: int = 5, cpu_clock: bool = False) -> float:
    """This machine's fp32 matmul rate now (best of reps n×n products): the ceiling a row is read against.

    cpu_clock: GFLOP per CPU-second per thread (process time / threads) instead of per wall second."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b  # warm-up (allocations, thread pool)
    clock = (lambda: time.process_time() / torch.get_num_threads()) if cpu_clock else time.perf_counter
    best = float("inf")
    for _ in range(reps):
        _sync(device)
        t0 = clock()
        a @ b
        _sync(device)
        best = min(best, clock() - t0)
    return 2 * n ** 3 / best / 1e9


def at_full_resolution(model: torch.nn.Module) -> bool:
    """False when a progressive model has drifted below its top level (its FLOPs would be overstated)."""
    return not hasattr(model, "progress") or model.progress()[0] == getattr(model, "max_level", 0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fp32_rate(gflops: float, wall: float, cpu: float, peak_wall: float, peak_cpu: float) -> str:
    """'GFLOP/s wall (% of peak) · per CPU-s per thread (% of peak)'; a row above the peak is flagged."""
    per_thread = gflops * cpu * torch.get_num_threads()  # cpu is images per CPU-second of all threads
    cells = []
    for achieved, peak in ((gflops * wall, peak_wall), (per_thread, peak_cpu)):
        # above the matmul peak means the timing and the FLOP count are of different networks
        flag = " ⚠ above peak: not trustworthy" if achieved > peak else ""
        cells.append(f"{achieved:.1f} ({100 * achieved / peak:.0f} %){flag}")
    return " · ".join(cells)


def measure_row(name: str, build_one, args: argparse.Namespace, precisions: list[str],
                peaks: tuple[float, float]) -> str:
    """One table row: params, FLOPs per image, images/s per precision, fp32 rate against the peaks."""
    torch.manual_seed(0)
    model, size, batch_size = build_one()
    batch = make_batch(model, batch_size, size, args.device)
    params = sum(q.numel() for q in model.parameters()) / 1e6
    gflops = flops_per_image(model, make_batch(model, min(batch_size, 8), size, batch["image"].device)) / 1e9
    speeds, rate = [], ""
    for q in precisions:
        torch.manual_seed(0)
        fresh = build_one()[0]
        steps = args.steps if q == "fp32" else args.bf16_steps
        wall, cpu = images_per_second(fresh, batch, q, args.warmup if q == "fp32" else 1, steps)
        speeds.append(f"{wall:.1f} / {cpu:.1f}")
        if q == "fp32":
            rate = fp32_rate(gflops, wall, cpu, *peaks)
    return (f"| {name} | {size} px, batch {batch_size} | {params:.2f} M | {gflops:.3f} | " + " | ".join(speeds)
            + f" | {rate} |")


def main() -> None:
    """Parse args, measure every model, print the markdown table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5, help="timed fp32 steps")
    p.add_argument("--bf16-steps", type=int, default=1, help="timed bf16 steps (bf16 is emulated on AVX2 CPUs)")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--models", default="", help="comma-separated registry names (default: all)")
    p.add_argument("--presets", action="store_true",
                   help=f"the shipped CPU presets' networks, resolution and batch ({', '.join(PRESETS.values())})")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="tiny run: 32×32, batch 8, 1 warm-up + 1 timed step")
    args = p.parse_args()
    if args.quick:
        args.size, args.batch, args.warmup, args.steps, args.bf16_steps = 32, 8, 1, 1, 1
    torch.set_num_threads(args.threads)
    device = args.device = torch.device(args.device)
    models = discover_models()
    wanted = [m for m in args.models.split(",") if m] or list(PRESETS if args.presets else models)
    precisions = [q for q in args.precisions.split(",") if q]
    peaks = matmul_peak_gflops(device), matmul_peak_gflops(device, cpu_clock=True)
    what = "the shipped CPU presets (training/configs)" if args.presets else f"{args.size}×{args.size}, batch {args.batch}"
    print(f"{what}, device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}; fp32 matmul "
          f"peak measured now: {peaks[0]:.0f} GFLOP/s wall, {peaks[1]:.0f} per CPU-second per thread\n")
    heads = [f"images/s {q} (wall / per CPU-s)" for q in precisions]
    print("| model | resolution, batch | params | GFLOPs / image (fwd+bwd) | " + " | ".join(heads)
          + " | fp32 GFLOP/s wall (% of peak) · per CPU-s per thread (% of peak) |")
    print("|---|---|---|---|" + "---|" * len(precisions) + "---|")
    for name in wanted:
        if name not in models or (args.presets and name not in PRESETS):
            print(f"| {name} | not available | | | " + " | " * len(precisions))
            continue
        if args.presets:
            build_one = lambda name=name: build_preset(name, device)  # noqa: E731
        else:
            build_one = lambda name=name: (build(models[name], args.size, device), args.size, args.batch)  # noqa: E731
        print(measure_row(name, build_one, args, precisions, peaks), flush=True)


if __name__ == "__main__":
    main()
