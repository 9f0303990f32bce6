#!/usr/bin/env python
"""facelab's VAE training step against pythae's trainer on the same networks, data and optimiser.

    python benchmarks/bench_vae_peers.py                      # 64 px preset, 1 thread, 12,800 images each
    python benchmarks/bench_vae_peers.py --threads 2 --images 25600
    python benchmarks/bench_vae_peers.py --quick              # smoke run (a few steps)

Contestants, one process, trained round-robin on the same chunks of images (round r: every
contestant takes the same --chunk steps of batch 64), so machine load hits them alike:

* facelab: the VAE of training/configs/vae_synthfaces64.yaml, stepped by training/steps.py's
  encoder_step (the function train.py calls) with an accelerate CPU Accelerator, as train.py runs it.
* facelab + <lever>: the same with one change (torch.compile of the model; channels_last).
* pythae 0.1.2 (PyPI): the *same* encoder and decoder modules, wrapped as pythae BaseEncoder /
  BaseDecoder (decoder output tanh(logits / 2), facelab's image map), pythae's VAE model with
  reconstruction_loss="mse", trained by its BaseTrainer.train_step over a loader of the chunk —
  pythae's own loop, optimiser step and callbacks. Its optimiser is set to facelab's (Adam, lr of
  the preset); pythae's default lr (1e-4) would train slower, not step faster.

Every contestant starts from the same initial weights (seed 0). images/s is per CPU-second of this
process (load-independent; --threads 1 makes it per core) and per wall second. Quality after the
same images: reconstruction MSE per pixel (images in [-1, 1]) of posterior means on held-out
synthfaces. Losses differ as each package defines them (pythae: ½·SSE + KL; facelab: its preset's
recon), so quality is each package's own result on the same networks, data and optimiser.

pythae is installed by this script into <cache>/pythae/site with `pip install --no-deps` (its other
requirements — pydantic, scikit-learn, scipy, imageio, cloudpickle, tqdm — are already in facelab's
environment), never into requirements.txt, and imported from there on facelab's own CPU torch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PYTHAE = "pythae==0.1.2"
PRESET = ROOT / "training" / "configs" / "vae_synthfaces64.yaml"
DEFAULT_CACHE = Path("~/.cache/facelab-peers")


def ensure_pythae(cache: Path) -> Path:
    """pythae installed (no dependencies) under cache/pythae/site; the folder to put on sys.path."""
    from gan_peers_env import pip_install

    site = cache / "pythae" / "site"
    if not (site / "pythae" / "__init__.py").is_file():
        site.mkdir(parents=True, exist_ok=True)
        pip_install(PYTHAE, site)
    return site


def render(n: int, size: int, split: str, seed: int = 0) -> torch.Tensor:
    """n synthfaces of a split as one tensor [n,3,S,S] in [-1,1] (rendered once, outside every clock)."""
    from facelab.data.build import build_dataset

    ds = build_dataset("synthfaces", size=size, split=split, background="original", seed=seed, length=n)
    return torch.stack([it["image"] for it in ds.__getitems__(list(range(n)))]).float()


def preset_model() -> tuple[torch.nn.Module, Any]:
    """The preset's VAE at seed 0 and its run config."""
    from facelab.config import load_config
    from training.train_utils import resolve_model_params

    cfg = load_config(PRESET)
    torch.manual_seed(0)
    return resolve_model_params(cfg).train(), cfg


class FacelabContestant:
    """train.py's step function on an accelerate CPU Accelerator, with an optional lever applied."""

    def __init__(self, lever: str = "") -> None:
        from accelerate import Accelerator

        from training.steps import Trainables, encoder_step

        model, cfg = preset_model()
        self.channels_last = lever == "channels_last"
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.accelerator = Accelerator(cpu=True)
        opt = model.configure_optimizers(cfg.train.learning_rate)["model"]
        prepared, opt = self.accelerator.prepare(model, opt)
        self.model = self.accelerator.unwrap_model(prepared)
        forward = torch.compile(prepared) if lever == "compile" else prepared
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
        self.parts = Trainables(model=forward, optimizers={"model": opt}, schedulers={"model": sched})
        self.step_fn, self.step = encoder_step, 0

    def train_chunk(self, images: torch.Tensor, batch: int) -> None:
        """One step per batch of the chunk, in order."""
        for i in range(0, len(images), batch):
            x = images[i:i + batch]
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            self.step_fn(self.accelerator, self.parts, {"image": x}, self.step, self.model)
            self.step += 1

    def encode_decode(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of x from the posterior mean, in [-1, 1]."""
        mu, _ = self.model._posterior(x, None)
        return torch.tanh(self.model._logits(mu, None) / 2)


class PythaeContestant:
    """pythae's VAE and BaseTrainer around the preset's encoder and decoder modules."""

    def __init__(self, site: Path, workdir: Path) -> None:
        sys.path.insert(0, str(site))
        from pythae.models import VAE, VAEConfig
        from pythae.models.base.base_utils import ModelOutput
        from pythae.models.nn import BaseDecoder, BaseEncoder
        from pythae.trainers import BaseTrainer, BaseTrainerConfig
        from pythae.data.datasets import BaseDataset

        facelab, cfg = preset_model()

        class Encoder(BaseEncoder):
            def __init__(self) -> None:
                super().__init__()
                self.net, self.head = facelab.encoder, facelab.to_posterior

            def forward(self, x: torch.Tensor) -> Any:
                mu, logvar = self.head(self.net(x)).chunk(2, dim=1)
                return ModelOutput(embedding=mu, log_covariance=logvar)

        class Decoder(BaseDecoder):
            def __init__(self) -> None:
                super().__init__()
                self.lin, self.net = facelab.from_latent, facelab.decoder

            def forward(self, z: torch.Tensor) -> Any:
                return ModelOutput(reconstruction=torch.tanh(self.net(self.lin(z)) / 2))

        size, dim = int(facelab.config.image_size), int(facelab.config.latent_dim)
        self.vae = VAE(VAEConfig(input_dim=(3, size, size), latent_dim=dim, reconstruction_loss="mse"),
                       encoder=Encoder(), decoder=Decoder())
        tc = BaseTrainerConfig(output_dir=str(workdir), per_device_train_batch_size=cfg.train.batch_size,
                               learning_rate=float(facelab.config.lr), num_epochs=1, no_cuda=True,
                               train_dataloader_num_workers=0, optimizer_cls="Adam")
        self.dataset = BaseDataset
        self.trainer = BaseTrainer(self.vae, train_dataset=BaseDataset(torch.zeros(1, 3, size, size),
                                                                       torch.zeros(1)), training_config=tc)
        self.trainer.prepare_training()
        self.epoch = 0

    def train_chunk(self, images: torch.Tensor, batch: int) -> None:
        """pythae's train_step over a loader of this chunk (its loop, shuffled within the chunk)."""
        self.trainer.train_loader = self.trainer.get_train_dataloader(self.dataset(images, torch.zeros(len(images))))
        self.epoch += 1
        self.trainer.train_step(self.epoch)

    def encode_decode(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of x from the posterior mean."""
        return self.vae.decoder(self.vae.encoder(x).embedding).reconstruction


def held_out_mse(contestant: Any, test: torch.Tensor, batch: int = 250) -> float:
    """Per-pixel MSE of posterior-mean reconstructions on held-out faces (eval mode, no grad)."""
    module = contestant.model if isinstance(contestant, FacelabContestant) else contestant.vae
    module.eval()
    with torch.no_grad():
        err = sum(float((contestant.encode_decode(test[i:i + batch]) - test[i:i + batch]).pow(2).sum())
                  for i in range(0, len(test), batch))
    module.train()
    return err / test.numel()


def run(contestants: dict[str, Any], train: torch.Tensor, chunk: int, batch: int) -> dict[str, dict[str, float]]:
    """Round-robin chunks: every contestant trains on chunk r before any sees chunk r + 1."""
    clocks = {name: {"cpu": 0.0, "wall": 0.0, "images": 0} for name in contestants}
    step_images = chunk * batch
    for r, start in enumerate(range(0, len(train) - step_images + 1, step_images)):
        images = train[start:start + step_images]
        for name, c in contestants.items():
            t0, c0 = time.perf_counter(), time.process_time()
            c.train_chunk(images, batch)
            clocks[name]["wall"] += time.perf_counter() - t0
            clocks[name]["cpu"] += time.process_time() - c0
            clocks[name]["images"] += len(images)
        print(f"round {r + 1}: " + ", ".join(f"{n} {v['images'] / v['cpu']:.0f}/CPU-s" for n, v in clocks.items()),
              flush=True)
    return clocks


def table(clocks: dict[str, dict[str, float]], mse: dict[str, float], threads: int, base: str) -> str:
    """Markdown: images/s per CPU-second and wall, ratio to pythae, held-out MSE after the same images."""
    ref = clocks.get(base)
    lines = ["| contestant | images | images per CPU-s | images per wall s | × pythae (CPU-s) | held-out recon MSE |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, v in clocks.items():
        rate = v["images"] / v["cpu"]
        ratio = f"{rate / (ref['images'] / ref['cpu']):.2f}" if ref else "—"
        lines.append(f"| {name} | {v['images']:,} | {rate:.1f} | {v['images'] / v['wall']:.1f} | {ratio} | "
                     f"{mse[name]:.4f} |")
    return "\n".join(lines) + f"\n\n{threads} thread(s); torch {torch.__version__}; {PYTHAE}"


def profile_table(contestant: FacelabContestant, images: torch.Tensor, batch: int, top: int = 12) -> str:
    """Markdown: the ops of facelab's step by self CPU time (torch.profiler over the given images)."""
    from torch.profiler import ProfilerActivity, profile

    contestant.train_chunk(images[:batch], batch)  # warm-up outside the profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        contestant.train_chunk(images, batch)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    rows = ["| op | share of the step's self CPU time | calls |", "|---|---:|---:|"]
    rows += [f"| {e.key} | {100 * e.self_cpu_time_total / total:.1f} % | {e.count} |" for e in events[:top]]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Render the data, build the contestants, train them round-robin, print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=12_800, help="training images each contestant sees")
    p.add_argument("--chunk", type=int, default=20, help="steps per contestant per round")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--test", type=int, default=1000, help="held-out faces for the reconstruction MSE")
    p.add_argument("--levers", default="compile,channels_last",
                   help="facelab variants beside the shipped step (comma list of compile, channels_last; '' none)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--quick", action="store_true", help="smoke run: 640 images, 100 held out, no levers")
    p.add_argument("--profile", action="store_true", help="also print which ops take facelab's step time")
    args = p.parse_args(argv)
    if args.quick:
        args.images, args.chunk, args.test, args.levers = 640, 5, 100, ""
    torch.set_num_threads(args.threads)
    cache = args.cache.expanduser()
    site = ensure_pythae(cache)
    _, cfg = preset_model()
    size, batch = cfg.data.image_size, cfg.train.batch_size
    train, test = render(args.images, size, "train"), render(args.test, size, "test")
    contestants: dict[str, Any] = {"facelab": FacelabContestant()}
    for lever in [x for x in args.levers.split(",") if x]:
        contestants[f"facelab + {lever}"] = FacelabContestant(lever)
    contestants["pythae"] = PythaeContestant(site, cache / "pythae" / "runs")
    clocks = run(contestants, train, args.chunk, batch)
    mse = {name: held_out_mse(c, test) for name, c in contestants.items()}
    print("\n" + table(clocks, mse, args.threads, "pythae"))
    if args.profile:
        steps = min(6, len(train) // batch)
        print(f"\nfacelab's step, profiled over {steps} batches of {batch}:\n")
        print(profile_table(contestants["facelab"], train[:steps * batch], batch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
