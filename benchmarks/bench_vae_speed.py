"""VAE training speed on CPU: seed-003 baseline vs facelab's default VAE, same data, same images seen.

Prints a markdown table: config, precision, images/s, held-out reconstruction MSE (per pixel,
images in [-1, 1]) after the same number of training images. Both models use the same loss
(α = β = 1, per-sample sums, MSE reconstruction), the same Adam LR and the same batches.
Models train round-robin in chunks of steps, so load from other processes hits all alike; the
"images per CPU-s" column (process time) is the load-robust one, best read with --threads 1.
bf16 autocast is opt-in (--bf16): CPUs without AVX512-BF16/AMX emulate it, many times slower.

    .venv/bin/python benchmarks/bench_vae_speed.py               # 12,800 images each (~5 min on 2 idle cores)
    .venv/bin/python benchmarks/bench_vae_speed.py --threads 1   # load-robust CPU-time ratio
    .venv/bin/python benchmarks/bench_vae_speed.py --quick       # a smoke run
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from facelab.models.vae import VAE, kl_normal, reconstruction_nll  # noqa: E402


class Seed003VAE(nn.Module):
    """Seed 003 (Keras) replicated: 5 × [Conv 3×3 s2, 64 ch, BN, LeakyReLU] → Dense; mirror with ConvT."""

    def __init__(self, image_size: int = 64, latent_dim: int = 64, features: int = 64):
        super().__init__()
        n_down = int(math.log2(image_size)) - 1  # 64 px → 5 down-samplings to 2×2, as in the seed
        enc, c_in = [], 3
        for _ in range(n_down):
            enc += [nn.Conv2d(c_in, features, 3, 2, 1), nn.BatchNorm2d(features), nn.LeakyReLU(0.3)]
            c_in = features
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        self.bottom = image_size >> n_down
        flat = features * self.bottom ** 2
        self.z_mean, self.z_log_var = nn.Linear(flat, latent_dim), nn.Linear(flat, latent_dim)
        self.dense = nn.Linear(latent_dim, flat)
        dec = []
        for _ in range(n_down):  # Keras Conv2DTranspose(3, strides=2, padding="same")
            dec += [nn.ConvTranspose2d(features, features, 3, 2, 1, output_padding=1),
                    nn.BatchNorm2d(features), nn.LeakyReLU(0.3)]
        self.decoder = nn.Sequential(*dec, nn.ConvTranspose2d(features, 3, 3, 1, 1))
        self.features = features

    def forward(self, batch: dict[str, torch.Tensor], step: int = 0) -> dict[str, torch.Tensor]:
        """Same loss as facelab's VAE with recon="mse", β = 1."""
        x = batch["image"]
        mu, logvar = self._posterior(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self._logits(z).float()
        recon = reconstruction_nll(x, logits, "mse").mean()
        kl = kl_normal(mu.float(), logvar.float()).sum(1).mean()
        return {"loss": recon + kl, "recon": recon, "kl": kl}

    def _posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.z_mean(h), self.z_log_var(h).clamp(-30, 20)

    def _logits(self, z: torch.Tensor) -> torch.Tensor:
        h = self.dense(z).view(z.shape[0], self.features, self.bottom, self.bottom)
        return self.decoder(h)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Images through the posterior mean."""
        return torch.tanh(self._logits(self._posterior(x)[0]) / 2)


def procedural_faces(n: int, size: int, seed: int) -> torch.Tensor:
    """Random-but-structured face-like images [n,3,size,size] in [-1,1]: gradient, face, eyes, mouth."""
    g = torch.Generator().manual_seed(seed)
    u = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    ys, xs = ys[None], xs[None]

    def blob(cx, cy, rx, ry, sharp=12.0):
        d = ((xs - cx[:, None, None]) / rx[:, None, None]) ** 2 + ((ys - cy[:, None, None]) / ry[:, None, None]) ** 2
        return torch.sigmoid(sharp * (1 - d))[:, None]

    angle = u(n) * 2 * math.pi
    t = (xs * angle.cos()[:, None, None] + ys * angle.sin()[:, None, None] + 1.5) / 3
    img = u(n, 3, 1, 1) + (u(n, 3, 1, 1) - 0.5) * t[:, None]
    cx, cy = (u(n) - 0.5) * 0.3, (u(n) - 0.5) * 0.3
    rx, ry = 0.35 + u(n) * 0.2, 0.45 + u(n) * 0.2
    hair = blob(cx, cy - ry * 0.35, rx * 1.15, ry * 0.8)
    img = img * (1 - hair) + hair * u(n, 3, 1, 1) * 0.6
    face = blob(cx, cy, rx, ry)
    img = img * (1 - face) + face * (torch.tensor([0.9, 0.7, 0.55])[None, :, None, None] * (0.6 + 0.4 * u(n, 1, 1, 1)))
    ew, eh = rx * (0.12 + 0.08 * u(n)), ry * 0.08
    for side in (-1, 1):
        eye = blob(cx + side * rx * 0.4, cy - ry * 0.15, ew, eh, 8.0)
        img = img * (1 - eye) + eye * u(n, 3, 1, 1) * 0.3
    mouth = blob(cx, cy + ry * 0.45, rx * (0.2 + 0.3 * u(n)), ry * (0.04 + 0.08 * u(n)), 8.0)
    img = img * (1 - mouth) + mouth * torch.tensor([0.6, 0.15, 0.2])[None, :, None, None]
    return (img.clamp(0, 1) * 2 - 1).contiguous()


def load_images(n: int, size: int, seed: int) -> tuple[torch.Tensor, str]:
    """SynthFaces images if that module exists, else procedural faces."""
    try:
        from facelab.data.synthfaces import SynthFaces
    except ImportError:
        return procedural_faces(n, size, seed), "procedural faces"
    ds = SynthFaces(size=size, length=n, seed=seed)
    chunks = [ds.__getitems__(list(range(i, min(i + 512, n)))) for i in range(0, n, 512)]  # vectorised render
    return torch.stack([item["image"] for chunk in chunks for item in chunk]), "SynthFaces"


class Trainer:
    """One model + Adam fed the same batch order as every other Trainer; keeps its own clock."""

    def __init__(self, model: nn.Module, images: torch.Tensor, batch: int, lr: float, bf16: bool = False,
                 own_optimizer: bool = True):
        self.model, self.images, self.batch, self.bf16 = model, images, batch, bf16
        # the model's own optimizer when it has one (facelab: fused Adam); plain Adam otherwise
        if own_optimizer and hasattr(model, "configure_optimizers"):
            self.opt = model.configure_optimizers(lr)["model"]
        else:
            self.opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
        self.order = torch.randperm(len(images), generator=torch.Generator().manual_seed(1))
        self.step, self.seconds, self.cpu_seconds, self.timed_images = 0, 0.0, 0.0, 0

    def run(self, steps: int, timed: bool = True) -> None:
        """Train `steps` batches; add their wall time to the clock when timed (not for warm-up)."""
        self.model.train()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            idx = self.order[(torch.arange(self.batch) + self.step * self.batch) % len(self.images)]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                out = self.model({"image": self.images[idx]}, self.step)
            self.opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            self.opt.step()
            self.step += 1
        if timed:
            self.seconds += time.perf_counter() - t0
            self.cpu_seconds += time.process_time() - c0
            self.timed_images += steps * self.batch

    @property
    def images_per_s(self) -> float:
        """Training throughput over the timed steps."""
        return self.timed_images / max(self.seconds, 1e-9)

    @property
    def images_per_cpu_s(self) -> float:
        """Images per CPU-second of this process: barely moved by other processes' load
        (with --threads 1; with more threads OpenMP spin-waits count as CPU time too)."""
        return self.timed_images / max(self.cpu_seconds, 1e-9)


def train_round_robin(trainers: list[Trainer], n_images: int, chunk: int = 5, warmup: int = 3) -> None:
    """Train all models for n_images each, alternating chunks of steps so that load from other
    processes on a shared machine hits every model alike (fair speed ratios)."""
    for t in trainers:
        t.run(warmup, timed=False)
    steps = max(n_images // trainers[0].batch - warmup, 1)
    for start in range(0, steps, chunk):
        for t in trainers:
            t.run(min(chunk, steps - start))


@torch.no_grad()
def heldout_mse(model: nn.Module, images: torch.Tensor) -> float:
    """Per-pixel MSE of eval-mode reconstructions through the posterior mean."""
    model.eval()
    recon = torch.cat([model.reconstruct(images[i:i + 128]) for i in range(0, len(images), 128)])
    return (recon.float() - images).pow(2).mean().item()


def configs(size: int, resnet: bool) -> dict[str, tuple]:
    """name -> (builder, optimizer label, use the model's own optimizer)."""
    rows = {"seed-003 (64 ch every level, 5× conv / 5× convT)": (lambda: Seed003VAE(size, 64), "Adam", False),
            "facelab VAE() default": (lambda: VAE(image_size=size), "fused Adam", True),
            "facelab VAE() default, plain Adam": (lambda: VAE(image_size=size), "Adam", False)}
    if resnet:
        rows["facelab VAE(arch='resnet')"] = (lambda: VAE(image_size=size, arch="resnet"), "fused Adam", True)
    return rows


def print_table(rows: list[tuple]) -> None:
    """Markdown table; speed-ups relative to the first row (the seed-003 baseline)."""
    base, base_cpu = rows[0][4], rows[0][5]
    print("| config | optimizer | precision | params | images/s (wall) | speed-up | images per CPU-s | speed-up "
          "(CPU) | held-out recon MSE |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, opt, precision, model, ips, ips_cpu, mse in rows:
        params = sum(q.numel() for q in model.parameters()) / 1e6
        print(f"| {name} | {opt} | {precision} | {params:.2f} M | {ips:.1f} | {ips / base:.2f}× | {ips_cpu:.1f} | "
              f"{ips_cpu / base_cpu:.2f}× | {mse:.4f} |")


def main() -> None:
    """Parse args, train every config on the same data, print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=12_800, help="training images per config")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--resnet", action="store_true", help="also train the residual variant")
    p.add_argument("--bf16", action="store_true", help="also time bf16 autocast (slow on AVX2-only CPUs)")
    p.add_argument("--quick", action="store_true", help="smoke run: 640 images, 32 px")
    args = p.parse_args()
    if args.quick:
        args.images, args.size = 640, 32
    torch.set_num_threads(args.threads)
    data, source = load_images(4096 + 512, args.size, seed=0)
    train_set, test_set = data[:4096], data[4096:]
    table = configs(args.size, args.resnet)
    print(f"data: {source}, {args.size}×{args.size}, {args.images} training images per model, batch {args.batch}, "
          f"lr {args.lr}, {torch.get_num_threads()} threads, models trained round-robin\n")
    trainers = {}
    for name, (build, _, own) in table.items():
        torch.manual_seed(0)
        trainers[name] = Trainer(build(), train_set, args.batch, args.lr, own_optimizer=own)
    train_round_robin(list(trainers.values()), args.images)
    rows = [(name, table[name][1], "fp32", t.model, t.images_per_s, t.images_per_cpu_s,
             heldout_mse(t.model, test_set)) for name, t in trainers.items()]
    if args.bf16:  # speed only: a few steps on a fresh copy
        for name, (build, opt, own) in table.items():
            t = Trainer(build(), train_set, args.batch, args.lr, bf16=True, own_optimizer=own)
            train_round_robin([t], 4 * args.batch, warmup=1)
            rows.append((name, opt, "bf16 autocast", t.model, t.images_per_s, t.images_per_cpu_s, float("nan")))
    print_table(rows)


if __name__ == "__main__":
    main()
