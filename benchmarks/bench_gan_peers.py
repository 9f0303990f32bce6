#!/usr/bin/env python
"""facelab's CPU GAN presets against the GAN trainers a user would pick instead, scored by facelab's FID.

    OMP_NUM_THREADS=1 python benchmarks/bench_gan_peers.py                  # 32 px, 20 min each, 1 thread
    python benchmarks/bench_gan_peers.py --size 32 --budget-min 20 --threads 1 --n-fid 1000 \
        --only facelab-dcgan,facelab-stylegan,stylegan2-pytorch,lightweight-gan
    python benchmarks/bench_gan_peers.py --size 32 --budget-min 0.5 --n-fid 50 --n-images 500 \
        --peer-set lightweight-gan.fmap_max=64                # smoke run (see "Cost per image" below)

Contestants, each trained for the same wall-clock budget on the same images, at the same resolution
and number of threads, one after the other (never side by side), then scored alike:

* facelab-dcgan, facelab-stylegan: training/configs/dcgan_synthfaces32_cpu.yaml and
  stylegan_synthfaces32_cpu.yaml run by training/train.py's own main(), with data.image_size=SIZE,
  data.length=N and data.seed=0 (the exported faces). The budget is enforced without changing
  training/: the worker wraps the step function that train.py's build() returns, and when the
  budget is spent it sets train.max_steps to the current step + 1, so train.py ends as at any
  max_steps: last checkpoint, then the release bundle. 1,000 images are then sampled from the
  bundle (facelab.hub.load_bundle) with facelab.metrics.fid_protocol.generated_images (seed 0, ψ 1,
  StyleGAN's EMA generator; DCGAN keeps none), the protocol's own sampler.
* stylegan2-pytorch 1.9.0 and lightweight-gan 1.2.1 (PyPI): their Trainer classes, imported
  directly, with the keyword defaults of each package's own `stylegan2_pytorch` /
  `lightweight_gan` command line (stylegan2-pytorch: batch 5 x 6 accumulated, network_capacity 16,
  lr 2e-4, ttur 1.5; lightweight-gan: batch 10 x 4 accumulated, attention at 32 px, 1x1
  discriminator output, Adam 2e-4, augmentation probability auto-set from the dataset size).
  Changed: image_size=SIZE; num_workers=0 (their default forks one data worker per core, which
  would use more CPU than --threads allows; facelab's loader runs in the main process too);
  no experiment tracker. Their periodic sample grids and checkpoints stay on, as in facelab's
  presets. `Trainer.train()` (one step) is called until the budget is spent; images seen = steps x
  batch x accumulation. Samples: the peer's own generate functions (stylegan2-pytorch
  `generate_truncated` at ψ 1, lightweight-gan `generate_`) on its EMA generator when the EMA is
  running, i.e. after step 20,000 — before that both packages' EMA generator is only a copy of the
  generator reset every 1,000 steps, so the live generator is sampled (the table's notes say which).

Cost per image at 32 px (forward FLOPs, torch.utils.flop_counter): stylegan2-pytorch's defaults
G 0.23 + D 0.56 GFLOP; lightweight-gan's defaults G 14.1 + D 6.0 GFLOP (fmap_max 512 with 4x4
convolutions, and its attention runs at full resolution when the image is 32 px), so one of its
40-image steps takes minutes on one thread and a short run sees few images — that is what its
command line gives at 32 px. `--peer-set PEER.KEY=VALUE` changes a Trainer argument (e.g.
lightweight-gan.fmap_max=64: G 0.43 + D 1.1 GFLOP) and the table marks the row as changed. A
contestant checks the clock between steps, so its last step may end after the budget: images/s is
images seen over the seconds actually spent.

Peer environments live under --cache (default ~/.cache/facelab-peers/), never in requirements.txt
and never in the facelab venv: `pip install --no-deps --target <cache>/<peer>/site` of the peer and
its import-time pure-Python dependencies (plus kornia-rs, kornia 0.9's small Rust wheel that does
not depend on torch), one package per pip call so a failure names its package. The peer then runs
in the facelab venv's python with PYTHONPATH=<cache>/<peer>/site, on facelab's own CPU torch; no
CUDA torch is ever downloaded. Installed (versions pinned):

* stylegan2-pytorch==1.9.0 kornia==0.9.0 kornia-rs==0.2.0 einops==0.8.2 vector-quantize-pytorch==0.1.0
  fire==0.7.1 termcolor==3.3.0 (stylegan2_pytorch.py imports fire at module level)
* lightweight-gan==1.2.1 kornia==0.9.0 kornia-rs==0.2.0 einops==0.8.2 adabelief-pytorch==0.2.1
  colorama==0.4.6 tabulate==0.10.0

Not installed, because the training path never imports them: retry (command line only), fire for
lightweight-gan (command line only), contrastive-learner (stylegan2-pytorch cl_reg only), aim
(tracker). stylegan2-pytorch imports aim at module level but uses it only with log=True, so a
one-line stub module `aim` is written to its site.

torchvision: both peers import it, but no PyPI wheel imports against torch 2.13.0+cpu — the only
one pairing with it, torchvision 0.28.0, is a CUDA build whose _C.so links libtorch_cuda.so /
libc10_cuda.so (import fails with "operator torchvision::nms does not exist"). So the script writes a
small shim package named `torchvision` into each peer's site (SHIM below, PIL + numpy + torch):
transforms Compose, Lambda, Resize, CenterCrop, RandomResizedCrop, ToTensor, ToPILImage,
functional.resize, and utils.make_grid / save_image — only what the peers use. The exported images
are already SIZE x SIZE, so Resize and CenterCrop leave them unchanged and ToTensor is the whole
data transform, as with the real torchvision.

CUDA on the CPU: both peers `assert torch.cuda.is_available()` at import and move every tensor and
module with `.cuda(rank)`. The peer worker (this script run with --worker) therefore makes
`Tensor.cuda` and `Module.cuda` return their object unchanged, answers True to is_available only
while the peer module is imported, and gives the peer module a view of torch whose
`torch.device("cuda:i")` is the CPU (lightweight-gan allocates its loss accumulators on it). The
peers' code is run unchanged; no checkpoint is loaded by this script (training and sampling share a
process). Only a peer's own NaN recovery reloads its last checkpoint, with its own
torch.load(..., weights_only=True).

Scoring: facelab.metrics.fid_protocol.real_features(SIZE, BACKGROUND, n) gives Inception features
of n held-out synthfaces (test split) and of a disjoint second set; every contestant's n samples
(kept as uint8, the 8 bits an image file holds, which Inception's preprocessing quantises to anyway)
pass through load_inception() + extract_features, and feature_distances gives FID and KID (subsets of
n/2). "data floor" is the FID of the two real sets: the best any model can score at this n.

Work files: <cache>/data/ (exported PNGs, reused when complete), <cache>/runs/<contestant>-<size>px-
<background>/ (spec.json, worker.log, samples.npy uint8 [n,H,W,3], result.json, the trainers' own
outputs), <cache>/results-<size>px-<background>.json (the table's numbers).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import random
import shlex
import shutil
import subprocess
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path.home() / ".cache" / "facelab-peers"
FACELAB_PRESETS = {"facelab-dcgan": "training/configs/dcgan_synthfaces32_cpu.yaml",
                   "facelab-stylegan": "training/configs/stylegan_synthfaces32_cpu.yaml"}
EMA_START_STEP = 20_000  # both peers: `if steps % 10 == 0 and steps > 20000: EMA()`, before that GE is a copy
SAMPLE_CHUNK = 100
PROGRESS_EVERY_S = 60.0


class BenchError(RuntimeError):
    """A contestant cannot be set up or run; the message says what to do."""


@dataclass(frozen=True)
class Peer:
    """A PyPI GAN trainer: what to install, which module to import, its command line's Trainer defaults."""

    name: str
    version: str
    module: str
    deps: tuple[str, ...]
    trainer_kwargs: dict[str, Any] = field(default_factory=dict)
    stubs: tuple[str, ...] = ()

    @property
    def requirement(self) -> str:
        """The pinned pip requirement of the peer itself."""
        return f"{self.name}=={self.version}"


PEERS = {
    "stylegan2-pytorch": Peer(
        "stylegan2-pytorch", "1.9.0", "stylegan2_pytorch",
        ("kornia==0.9.0", "kornia-rs==0.2.0", "einops==0.8.2", "vector-quantize-pytorch==0.1.0", "fire==0.7.1",
         "termcolor==3.3.0"),
        # `stylegan2_pytorch` command line defaults (cli.py train_from_folder)
        dict(batch_size=5, gradient_accumulate_every=6, network_capacity=16, fmap_max=512, lr=2e-4,
             lr_mlp=0.1, ttur_mult=1.5, save_every=1000, evaluate_every=1000, num_image_tiles=8,
             trunc_psi=0.75, mixed_prob=0.9, aug_prob=0.0, aug_types=["translation", "cutout"],
             num_workers=0, log=False),
        stubs=("torchvision", "aim")),
    "lightweight-gan": Peer(
        "lightweight-gan", "1.2.1", "lightweight_gan",
        ("kornia==0.9.0", "kornia-rs==0.2.0", "einops==0.8.2", "adabelief-pytorch==0.2.1",
         "colorama==0.4.6", "tabulate==0.10.0"),
        # `lightweight_gan` command line defaults (cli.py train_from_folder)
        dict(batch_size=10, gradient_accumulate_every=4, attn_res_layers=[32], disc_output_size=1,
             fmap_max=512, lr=2e-4, optimizer="adam", save_every=1000, evaluate_every=1000,
             num_image_tiles=8, aug_prob=None, aug_types=["cutout", "translation"], num_workers=0,
             use_aim=False),
        stubs=("torchvision",)),
}
CONTESTANTS = (*FACELAB_PRESETS, *PEERS)

# ---------------------------------------------------------------------------------------------
# Shims written into a peer's site dir (see the module docstring): not torchvision, not aim.

_SHIM_NOTE = ("Written by facelab's benchmarks/bench_gan_peers.py: a shim, NOT the real package. "
              "PyPI's torchvision for torch 2.13 is a CUDA build that cannot load against the CPU torch.")
SHIM: dict[str, dict[str, str]] = {
    "torchvision": {
        "torchvision/__init__.py": f'"""{_SHIM_NOTE}"""\nfrom . import transforms, utils  # noqa: F401\n'
                                   '__version__ = "0.0.0+facelab.shim"\n',
        "torchvision/transforms/functional.py": f'''"""{_SHIM_NOTE}"""
import numpy as np
import torch
from PIL import Image


def _pair(size):
    return (size, size) if isinstance(size, int) else tuple(size) * (2 if len(size) == 1 else 1)


def resize(img, size, interpolation=Image.BILINEAR):
    """PIL resize: an int sets the shorter side (aspect kept), (h, w) sets both."""
    w, h = img.size
    if isinstance(size, int) or len(size) == 1:
        s = size if isinstance(size, int) else size[0]
        nw, nh = (s, int(s * h / w)) if w <= h else (int(s * w / h), s)
    else:
        nh, nw = size
    return img if (nw, nh) == (w, h) else img.resize((nw, nh), interpolation)


def center_crop(img, size):
    th, tw = _pair(size)
    w, h = img.size
    left, top = int(round((w - tw) / 2)), int(round((h - th) / 2))
    return img if (tw, th) == (w, h) else img.crop((left, top, left + tw, top + th))


def to_tensor(img):
    """PIL image -> float [C,H,W] in [0,1]."""
    arr = np.asarray(img, dtype=np.uint8)
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div(255)


def to_pil_image(tensor):
    """[C,H,W] float in [0,1] (or uint8) -> PIL image."""
    x = tensor.detach().cpu()
    if x.is_floating_point():
        x = x.mul(255).round().clamp(0, 255)
    arr = x.to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
''',
        "torchvision/transforms/__init__.py": f'''"""{_SHIM_NOTE}"""
import math
import random

from PIL import Image

from . import functional  # noqa: F401
from .functional import _pair, center_crop, resize, to_pil_image, to_tensor


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x


class Lambda:
    def __init__(self, fn):
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)


class Resize:
    def __init__(self, size, interpolation=Image.BILINEAR):
        self.size, self.interpolation = size, interpolation

    def __call__(self, img):
        return resize(img, self.size, self.interpolation)


class CenterCrop:
    def __init__(self, size):
        self.size = _pair(size)

    def __call__(self, img):
        return center_crop(img, self.size)


class RandomResizedCrop:
    """A crop of random area fraction `scale` and aspect `ratio` (log-uniform), resized to size."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation=Image.BILINEAR):
        self.size, self.scale, self.ratio, self.interpolation = _pair(size), scale, ratio, interpolation

    def __call__(self, img):
        w, h = img.size
        for _ in range(10):
            area = w * h * random.uniform(*self.scale)
            aspect = math.exp(random.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            cw, ch = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                x0, y0 = random.randint(0, w - cw), random.randint(0, h - ch)
                return img.crop((x0, y0, x0 + cw, y0 + ch)).resize(self.size[::-1], self.interpolation)
        side = min(w, h)
        return center_crop(img, side).resize(self.size[::-1], self.interpolation)


class ToTensor:
    def __call__(self, img):
        return to_tensor(img)


class ToPILImage:
    def __call__(self, tensor):
        return to_pil_image(tensor)
''',
        "torchvision/utils.py": f'''"""{_SHIM_NOTE}"""
import math

import torch
from PIL import Image


def make_grid(tensor, nrow=8, padding=2, pad_value=0.0, normalize=False, value_range=None, **_):
    """[N,C,H,W] (or a list of [C,H,W]) -> one [C, rows, cols] image, nrow images per row."""
    x = torch.stack(list(tensor)) if isinstance(tensor, (list, tuple)) else tensor
    x = (x[None] if x.dim() == 3 else x).detach().float()
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    if normalize:
        lo, hi = value_range if value_range is not None else (float(x.min()), float(x.max()))
        x = (x.clamp(lo, hi) - lo) / max(hi - lo, 1e-5)
    n, c, h, w = x.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = x.new_full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value)
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = r * (h + padding) + padding, k * (w + padding) + padding
        grid[:, top:top + h, left:left + w] = x[i]
    return grid


def save_image(tensor, fp, nrow=8, padding=2, format=None, **kwargs):
    """Images in [0,1] -> one grid image file."""
    grid = make_grid(tensor, nrow=nrow, padding=padding, **kwargs)
    arr = grid.mul(255).add(0.5).clamp(0, 255).permute(1, 2, 0).to(torch.uint8).cpu().numpy()
    Image.fromarray(arr).save(fp, format=format)
''',
    },
    "aim": {
        "aim.py": '''"""Written by facelab's benchmarks/bench_gan_peers.py: a stub, NOT the aim tracker.

stylegan2-pytorch imports aim at module level but uses it only with log=True (off here).
"""


def __getattr__(name):
    raise ImportError(f"aim.{name}: the aim experiment tracker is not installed in this benchmark "
                      "environment (stylegan2-pytorch uses it only with log=True)")
''',
    },
}


# ---------------------------------------------------------------------------------------------
# Data, environments, workers (main process)

def export_images(cache: Path, size: int, background: str, n: int, chunk: int = 500) -> Path:
    """The N training synthfaces as PNG files (the peers train on folders); reused when complete."""
    folder = cache / "data" / f"synthfaces-{size}px-{background}-seed0-n{n}"
    if folder.is_dir() and len(list(folder.glob("*.png"))) == n:
        print(f"data: reusing {n} images in {folder}", flush=True)
        return folder
    from facelab.data.build import build_dataset
    from facelab.imaging import to_pil

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    ds = build_dataset("synthfaces", size=size, split="train", background=background, seed=0, length=n)
    started = time.perf_counter()
    for start in range(0, n, chunk):
        items = ds.__getitems__(list(range(start, min(n, start + chunk))))
        for i, im in enumerate(to_pil(torch.stack([it["image"] for it in items]))):
            im.save(folder / f"{start + i:06d}.png")
    print(f"data: exported {n} synthfaces ({size} px, {background}) to {folder} in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    return folder


def pip_install(requirement: str, site: Path) -> None:
    """`pip install --no-deps --target site requirement`, or a BenchError naming the package."""
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
           "--target", str(site), requirement]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired as err:
        raise BenchError(f"pip timed out installing {requirement}; install it by hand:\n  {shlex.join(cmd)}") from err
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        raise BenchError(f"could not install {requirement} from PyPI (is PyPI reachable?):\n{tail}\n"
                         f"Install it by hand, then rerun:\n  {shlex.join(cmd)}")


def ensure_peer(peer: Peer, cache: Path) -> Path:
    """The peer's site dir: its packages (pip --no-deps --target) and the shims; reused when complete."""
    site = cache / peer.name / "site"
    marker = site / ".facelab-bench.json"
    wanted = {"packages": [peer.requirement, *peer.deps], "stubs": list(peer.stubs),
              "shim": {k: SHIM[k] for k in peer.stubs}}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return site
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir(parents=True)
    for requirement in wanted["packages"]:
        print(f"{peer.name}: pip install --no-deps --target {site} {requirement}", flush=True)
        pip_install(requirement, site)
    for stub in peer.stubs:
        for rel, text in SHIM[stub].items():
            path = site / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    marker.write_text(json.dumps(wanted, indent=1))
    return site


def run_worker(name: str, spec: dict[str, Any], site: Path | None, threads: int, budget_s: float) -> dict[str, Any]:
    """Train + sample one contestant in a fresh process (own threads, PYTHONPATH); its result.json."""
    workdir = Path(spec["workdir"])
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    (workdir / "spec.json").write_text(json.dumps(spec, indent=1))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1",
               TQDM_MININTERVAL="30")  # train.py's progress bar: a line per 30 s in worker.log
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    log = workdir / "worker.log"
    print(f"{name}: training for {budget_s / 60:g} min at {threads} thread(s); log {log}", flush=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(workdir / "spec.json")]
    with open(log, "w") as fh:
        try:
            rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT),
                                timeout=3 * budget_s + 3600).returncode  # a CPU-clock budget stretches under load
        except subprocess.TimeoutExpired:
            rc = "timeout"
    result = workdir / "result.json"
    if rc != 0 or not result.is_file():
        tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-15:])
        raise BenchError(f"{name}: worker failed (exit {rc}); last lines of {log}:\n{tail}")
    out = json.loads(result.read_text())
    print(f"{name}: {out['images_seen']} images in {out['seconds']:.0f} s "
          f"({out['images_per_s']:.1f}/s), sampled {out['generator']}", flush=True)
    return out


# ---------------------------------------------------------------------------------------------
# Worker side: facelab presets

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
# Worker side: peers

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


# ---------------------------------------------------------------------------------------------
# Scoring and the table

def score(results: dict[str, dict[str, Any]], size: int, background: str, n: int) -> dict[str, float]:
    """FID / KID of every contestant's samples vs n held-out synthfaces (in place); returns the data floor."""
    from facelab.metrics.fid import extract_features, feature_distances, load_inception
    from facelab.metrics.fid_protocol import real_features

    print(f"scoring: Inception features of 2 x {n} held-out synthfaces and {len(results)} x {n} samples",
          flush=True)
    real_a, real_b, _ = real_features(size, background, n)
    subset = max(2, n // 2)
    floor = feature_distances(real_a, real_b, kid_subset_size=subset)
    inception = load_inception()
    for name, r in results.items():
        if "error" in r:
            continue
        arr = np.load(r["samples_path"])
        if arr.shape != (n, size, size, 3) or arr.dtype != np.uint8:
            r["error"] = f"samples {arr.shape} {arr.dtype}, expected ({n}, {size}, {size}, 3) uint8"
            continue
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        feats = extract_features(inception, [x[i:i + SAMPLE_CHUNK] for i in range(0, n, SAMPLE_CHUNK)])
        d = feature_distances(real_a, feats, kid_subset_size=subset)
        r.update(fid=d["frechet"], kid=d["kid_mean"], kid_std=d["kid_std"])
    return {"fid_floor": floor["frechet"], "kid_floor": floor["kid_mean"]}


def package_of(name: str) -> str:
    """The package/version cell: a peer's PyPI pin, or facelab's version and preset."""
    if name in PEERS:
        return f"{PEERS[name].name} {PEERS[name].version}"
    import facelab

    return f"facelab {facelab.__version__} ({Path(FACELAB_PRESETS[name]).name})"


def table(results: dict[str, dict[str, Any]], floor: dict[str, float], args: argparse.Namespace) -> str:
    """One markdown table, plus notes on how each contestant was sampled and any failures."""
    head = ["contestant", "package/version", "resolution", "threads", "budget min", "images seen",
            "images/s", f"FID ({args.n_fid})", f"KID ({args.n_fid})", "data floor FID"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for name, r in results.items():
        common = [name, package_of(name), f"{args.size} px", str(args.threads), f"{args.budget_min:g} ({args.clock})"]
        if "error" in r:
            lines.append("| " + " | ".join(common + ["failed"] + [""] * 3 + [f"{floor['fid_floor']:.2f}"]) + " |")
            notes.append(f"{name}: {r['error'].splitlines()[0]}")
            continue
        if r.get("overrides"):
            common[1] += " (changed, see notes)"
        cells = [f"{r['images_seen']:,}", f"{r['images_per_s']:.1f}", f"{r['fid']:.2f}",
                 f"{r['kid']:.4f} ± {r['kid_std']:.4f}", f"{floor['fid_floor']:.2f}"]
        lines.append("| " + " | ".join(common + cells) + " |")
        extra = f", augmentation probability {r['aug_prob']:.2f}" if r.get("aug_prob") is not None else ""
        if r.get("overrides"):
            extra += ", CHANGED from its command-line defaults: " + ", ".join(
                f"{k}={v}" for k, v in r["overrides"].items())
        notes.append(f"{name}: {r['steps']:,} step(s) in {r['seconds']:.0f} s, "
                     f"sampled from the {r['generator']}{extra}")
    return "\n".join(lines + [""] + [f"- {n}" for n in notes])


# ---------------------------------------------------------------------------------------------
# Command line

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line: --size --background --budget-min --threads --only --n-fid --n-images --cache."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=32, help="resolution (a power of 2; default 32)")
    p.add_argument("--background", default="original", choices=["original", "grey", "blur"])
    p.add_argument("--budget-min", type=float, default=20.0, help="training wall-clock per contestant (min)")
    p.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                   help="what the budget counts: wall seconds (default; needs an idle machine) or the "
                        "contestant's own CPU seconds / threads (fair when other jobs share the cores)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for every contestant (default 1)")
    p.add_argument("--only", default=",".join(CONTESTANTS), help=f"comma list of {', '.join(CONTESTANTS)}")
    p.add_argument("--n-fid", type=int, default=1000, help="samples and held-out images for FID/KID")
    p.add_argument("--n-images", type=int, default=20_000, help="training synthfaces exported (default 20,000)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"work folder (default {DEFAULT_CACHE})")
    p.add_argument("--peer-set", nargs="+", action="extend", default=[], metavar="PEER.KEY=VALUE",
                   help="change a peer Trainer argument (JSON value), e.g. lightweight-gan.fmap_max=64; "
                        "default: each peer's command-line defaults (the table notes any change)")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one contestant from a spec.json
    args = p.parse_args(argv)
    if args.worker is None:
        args.only = [c.strip() for c in args.only.split(",") if c.strip()]
        unknown = [c for c in args.only if c not in CONTESTANTS]
        if unknown or not args.only:
            p.error(f"--only: unknown contestant(s) {unknown}; choose from {', '.join(CONTESTANTS)}")
        if args.size < 8 or not math.log2(args.size).is_integer():
            p.error(f"--size must be a power of 2 >= 8 (the peers need one), got {args.size}")
        if args.n_fid < 4 or args.threads < 1 or args.budget_min <= 0 or args.n_images < 1:
            p.error("--n-fid >= 4, --threads >= 1, --budget-min > 0 and --n-images >= 1 are required")
        try:
            args.peer_overrides = parse_peer_set(args.peer_set)
        except ValueError as err:
            p.error(str(err))
    return args


def parse_peer_set(items: list[str]) -> dict[str, dict[str, Any]]:
    """--peer-set PEER.KEY=VALUE items -> {peer: {key: value}}; values are JSON (bare words stay strings)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, raw = item.partition("=")
        peer, dot, key = target.partition(".")
        if not sep or not dot or not key:
            raise ValueError(f"--peer-set {item!r}: expected PEER.KEY=VALUE, e.g. lightweight-gan.fmap_max=64")
        if peer not in PEERS:
            raise ValueError(f"--peer-set {item!r}: unknown peer {peer!r}; choose from {', '.join(PEERS)}")
        if key in ("name", "base_dir", "image_size"):
            raise ValueError(f"--peer-set {item!r}: {key} is set by the benchmark (image_size: --size)")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(peer, {})[key] = value
    return out


def run_contestant(name: str, args: argparse.Namespace, data: Path) -> dict[str, Any]:
    """Install (peers), train and sample one contestant; its result, or {'error': ...}."""
    workdir = args.cache.expanduser() / "runs" / f"{name}-{args.size}px-{args.background}"
    spec = {"contestant": name, "workdir": str(workdir), "data": str(data), "size": args.size,
            "background": args.background, "n_images": args.n_images, "budget_s": args.budget_min * 60,
            "threads": args.threads, "clock": args.clock, "n_fid": args.n_fid, "preset": FACELAB_PRESETS.get(name),
            "trainer_overrides": args.peer_overrides.get(name, {})}
    try:
        site = ensure_peer(PEERS[name], args.cache.expanduser()) if name in PEERS else None
        result = run_worker(name, spec, site, args.threads, args.budget_min * 60)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return {"error": str(err)}
    result["samples_path"] = str(workdir / "samples.npy")
    return result


def main(argv: list[str] | None = None) -> int:
    """Export the data, run every contestant in turn, score them, print the table."""
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker)
    sys.path.insert(0, str(ROOT))  # this checkout's facelab (peer workers never import it)
    torch.set_num_threads(args.threads)
    cache = args.cache.expanduser()
    data = export_images(cache, args.size, args.background, args.n_images)
    results = {name: run_contestant(name, args, data) for name in args.only}
    from facelab.metrics.fid import InceptionUnavailable

    try:
        floor = score(results, args.size, args.background, args.n_fid)
    except InceptionUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    text = table(results, floor, args)
    path = cache / f"results-{args.size}px-{args.background}.json"
    path.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "floor": floor,
                                "results": results}, indent=1, default=str))
    print(f"\n{text}\n\n(numbers also in {path})")
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
