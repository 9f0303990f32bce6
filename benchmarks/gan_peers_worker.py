"""The worker side of benchmarks/bench_gan_peers.py: train one contestant for its budget, then sample it.

Run as `bench_gan_peers.py --worker SPEC.json` in a fresh process (its own threads and PYTHONPATH);
writes samples.npy and result.json next to the spec.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import sys
import time
import types
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gan_peers_spec import EMA_START_STEP, FACELAB_PRESETS, PEERS, PROGRESS_EVERY_S, ROOT, SAMPLE_CHUNK, \
    BenchError, Peer

# ---------------------------------------------------------------------------------------------
# facelab presets

def budget_clock(kind: str, threads: int) -> Callable[[], float]:
    """The budget's clock: wall seconds, or this process's CPU seconds per thread (load-independent)."""
    if kind == "cpu":
        return lambda: time.process_time() / threads
    return time.perf_counter

def facelab_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run training/train.py's main() with a wall-clock stop, then sample the bundle with the protocol."""
    sys.path.insert(0, str(ROOT))
    import training.train as train_py
    from facelab.hub import load_bundle
    from facelab.imaging import to_uint8
    from facelab.metrics.fid_protocol import generated_images

    budget_s, clock = float(spec["budget_s"]), {"fn": budget_clock(spec["clock"], int(spec["threads"]))}
    original_build = train_py.build

    def build_with_deadline(cfg: Any, accelerator: Any) -> Any:
        run = original_build(cfg, accelerator)
        step_fn = run.step_fn

        def step(acc: Any, parts: Any, batch: Any, step_no: int, model: Any) -> Any:
            now = clock["fn"]()
            clock.setdefault("start", now)
            if now - clock["start"] >= budget_s:  # this is the last step: train.py checkpoints, then bundles
                run.cfg.train.max_steps = step_no + 1
            out = step_fn(acc, parts, batch, step_no, model)
            clock["end"] = clock["fn"]()
            return out

        run.step_fn = step
        return run

    train_py.build = build_with_deadline
    out = Path(spec["workdir"]) / "train"
    overrides = [f"data.image_size={spec['size']}", f"data.background={spec['background']}",
                 f"data.length={spec['n_images']}", "data.seed=0", f"train.output_dir={out}",
                 "train.max_steps=1000000000"]
    rc = train_py.main(["--config", str(ROOT / spec["preset"]), "--set", *overrides])
    if rc != 0:
        raise BenchError(f"training/train.py exited with {rc}")
    bundle = load_bundle(str(out / "bundle"), with_probes=False)
    samples = to_uint8(generated_images(bundle.model, int(spec["n_fid"]), int(spec["size"])))
    training = bundle.meta["training"]
    which = "EMA generator" if hasattr(bundle.model, "generator_ema") else "generator (DCGAN keeps no EMA)"
    return {"images_seen": int(training["images_seen"]), "seconds": clock["end"] - clock["start"],
            "steps": int(training["steps"]), "generator": f"{which}, protocol sampler, ψ 1", "samples": samples}


# ---------------------------------------------------------------------------------------------
# Peers

def _keep_in_place(self: Any, *args: Any, **kwargs: Any) -> Any:
    """Tensor.cuda / Module.cuda on this CPU: the object, unmoved."""
    return self


class _CpuTorch(types.ModuleType):
    """torch as a CUDA-only peer module sees it: torch.device('cuda:i') names the CPU, all else is torch."""

    def __init__(self) -> None:
        super().__init__("torch")

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    @staticmethod
    def device(*args: Any, **kwargs: Any) -> torch.device:
        """torch.device, with CUDA devices mapped to the CPU."""
        d = torch.device(*args, **kwargs)
        return torch.device("cpu") if d.type == "cuda" else d


def import_peer_on_cpu(module: str) -> types.ModuleType:
    """Import `<module>.<module>` (the peer's Trainer) so its CUDA-only code runs on the CPU, unchanged."""
    torch.Tensor.cuda = _keep_in_place  # type: ignore[method-assign]  # the peers call .cuda(rank) everywhere
    torch.nn.Module.cuda = _keep_in_place  # type: ignore[method-assign]
    is_available = torch.cuda.is_available
    torch.cuda.is_available = lambda: True  # only for `assert torch.cuda.is_available()` at import
    try:
        mod = importlib.import_module(f"{module}.{module}")
    except ImportError as err:
        raise BenchError(f"cannot import {module} from {os.environ.get('PYTHONPATH')}: {err}; delete that "
                         "folder to reinstall it") from err
    finally:
        torch.cuda.is_available = is_available
    mod.torch = _CpuTorch()  # lightweight-gan: torch.zeros([], device=torch.device(f"cuda:{rank}"))
    return mod


def sample_peer(peer: Peer, mod: types.ModuleType, trainer: Any, n: int, seed: int = 0) -> tuple[np.ndarray, str]:
    """n samples as uint8 [n,H,W,3] from the peer's own generate function, ψ 1, and which generator."""
    ema = trainer.steps > EMA_START_STEP
    gan = trainer.GAN
    gan.eval()
    gen = torch.Generator().manual_seed(seed)
    chunks = []
    with torch.no_grad():
        for start in range(0, n, SAMPLE_CHUNK):
            k = min(SAMPLE_CHUNK, n - start)
            if peer.name == "stylegan2-pytorch":
                S, G = (gan.SE, gan.GE) if ema else (gan.S, gan.G)
                z = torch.randn(k, G.latent_dim, generator=gen)
                noise = torch.rand(k, G.image_size, G.image_size, 1, generator=gen)  # as its image_noise()
                x = trainer.generate_truncated(S, G, [(z, G.num_layers)], noise, trunc_psi=1.0)
            else:
                G = gan.GE if ema else gan.G
                x = trainer.generate_(G, torch.randn(k, gan.latent_dim, generator=gen))
            chunks.append(x.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
    which = "EMA generator (GE)" if ema else f"live generator G (EMA starts after step {EMA_START_STEP})"
    return np.concatenate(chunks), which


def train_peer(trainer: Any, mod: types.ModuleType, budget_s: float, per_step: int,
               now: Callable[[], float]) -> tuple[float, int]:
    """Call Trainer.train() (one step each) until the budget is spent on `now`; seconds and NaN restarts."""
    nan_in_a_row = restarts = 0
    started = last_print = now()
    while now() - started < budget_s:
        try:
            trainer.train()
            nan_in_a_row = 0
        except mod.NanException:  # as the peers' command line does (retry_call, 3 tries)
            nan_in_a_row, restarts = nan_in_a_row + 1, restarts + 1
            if nan_in_a_row >= 3:
                raise
        t = now()
        if t - last_print >= PROGRESS_EVERY_S:
            last_print = t
            seen = trainer.steps * per_step
            print(f"step {trainer.steps}: {seen} images, {seen / (t - started):.1f}/s, "
                  f"d_loss {trainer.d_loss:.4g}, g_loss {trainer.g_loss:.4g}", flush=True)
    return now() - started, restarts


def peer_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one peer on the exported folder for the budget, then sample it."""
    peer = PEERS[spec["contestant"]]
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    mod = import_peer_on_cpu(peer.module)
    kwargs = dict(peer.trainer_kwargs, **spec["trainer_overrides"], name="bench", base_dir=spec["workdir"],
                  image_size=int(spec["size"]))
    trainer = mod.Trainer(**kwargs)
    trainer.set_data_src(spec["data"])
    trainer.init_GAN()  # built before the clock starts, as facelab's model is
    per_step = kwargs["batch_size"] * kwargs["gradient_accumulate_every"]
    seconds, restarts = train_peer(trainer, mod, float(spec["budget_s"]), per_step,
                                   budget_clock(spec["clock"], int(spec["threads"])))
    samples, which = sample_peer(peer, mod, trainer, int(spec["n_fid"]))
    return {"images_seen": trainer.steps * per_step, "seconds": seconds, "steps": trainer.steps,
            "generator": which, "nan_restarts": restarts, "aug_prob": trainer.aug_prob,
            "torchvision": sys.modules["torchvision"].__version__, "overrides": spec["trainer_overrides"],
            "samples": samples}


def worker_main(spec_path: str) -> int:
    """--worker: run one contestant from its spec.json, write samples.npy and result.json."""
    spec = json.loads(Path(spec_path).read_text())
    threads = int(spec["threads"])
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)
    name = spec["contestant"]
    out = facelab_worker(spec) if name in FACELAB_PRESETS else peer_worker(spec)
    samples = out.pop("samples")
    workdir = Path(spec["workdir"])
    np.save(workdir / "samples.npy", samples)
    out.update(contestant=name, images_per_s=out["images_seen"] / max(out["seconds"], 1e-9),
               samples_shape=list(samples.shape), threads=threads, torch=torch.__version__)
    (workdir / "result.json").write_text(json.dumps(out, indent=1))
    return 0
