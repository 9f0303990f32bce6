"""The peers' environments and data for benchmarks/bench_gan_peers.py (main process side).

Each peer gets a site folder of its own (`pip install --no-deps --target`), plus the small
torchvision / aim shims below (see bench_gan_peers.py's docstring for why); the training images are
exported once as PNG files, since the peers train on image folders.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from gan_peers_spec import BenchError, Peer

# ---------------------------------------------------------------------------------------------
# Shims written into a peer's site dir (see bench_gan_peers.py's docstring): not torchvision, not aim.

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
