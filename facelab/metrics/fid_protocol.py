"""One FID protocol for every shipped bundle, so families compare: 1,000 generated vs 1,000 held-out.

Real images are synthfaces of the bundle's background variant from the "test" split (a seed
disjoint from training), rendered at the protocol resolution: set A = items 0..n−1 is what
samples are compared with; set B = items n..2n−1 gives the *data floor*, the FID of two disjoint
real sets of the same size (the best any model can score at this n, since FID is biased upwards
at small n). Generated images come from the model at a fixed seed (temperature 1, StyleGAN ψ 1,
EMA generator), area-downsampled when the protocol resolution is below the model's, so a 64-px
VAE and a 32-px GAN are also compared at 32 px. KID uses subsets of n/2 images (with subsets as
large as the set, every subset is the whole set and the spread is zero, meaningless).

Keys written to metrics.json (suffix ``_{R}px`` for a resolution other than the model's own):
``fid_1000``, ``kid_1000``, ``kid_1000_std``, ``fid_floor_1000``.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from facelab.metrics.fid import (INCEPTION_NAME, INCEPTION_RESIZE, INCEPTION_SHA1, extract_features,
                                 feature_distances, load_inception)

PROTOCOL_N = 1000
PROTOCOL_SEED = 0  # the generated images' seed (and the synthfaces test split's base seed)


def real_images(size: int, background: str, n: int, offset: int = 0, seed: int = PROTOCOL_SEED
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out synthfaces items offset..offset+n−1: images [n,3,S,S] in [-1,1] and attributes [n,A]."""
    from facelab.data.build import build_dataset

    ds = build_dataset("synthfaces", size=size, split="test", background=background, seed=seed,
                       length=offset + n)
    items = ds.__getitems__(list(range(offset, offset + n)))
    return (torch.stack([it["image"] for it in items]).float(),
            torch.stack([torch.as_tensor(it["attributes"]) for it in items]).float())


def cache_dir() -> Path:
    """Where real-set features are kept between runs ($FACELAB_CACHE or ~/.cache/facelab)."""
    return Path(os.environ.get("FACELAB_CACHE") or Path.home() / ".cache" / "facelab") / "fid_protocol"


@functools.lru_cache(maxsize=8)
def real_features(size: int, background: str, n: int = PROTOCOL_N, device: str = "cpu"
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inception features of real set A, of the disjoint set B, and A's attributes (cached in memory and on disk).

    The disk cache (safetensors) is keyed by everything the features depend on: resolution, variant,
    n, the split's seed, the Inception weights' hash and the resize; 2,000 Inception passes cost minutes on a CPU.
    """
    from safetensors.torch import load_file, save_file

    key = f"{size}px_{background}_n{n}_seed{PROTOCOL_SEED}_{INCEPTION_SHA1[:12]}_{INCEPTION_RESIZE}"
    path = cache_dir() / f"real_{key}.safetensors"
    if path.is_file():
        try:
            t = load_file(str(path))
            return t["a"], t["b"], t["labels"]
        except Exception:  # a damaged cache file is recomputed, never trusted
            path.unlink(missing_ok=True)
    inception = load_inception(device)
    a, labels = real_images(size, background, n, 0)
    b, _ = real_images(size, background, n, n)
    out = (_features(inception, a), _features(inception, b), labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    save_file({"a": out[0].contiguous(), "b": out[1].contiguous(), "labels": out[2].contiguous()}, str(tmp))
    tmp.replace(path)  # written then renamed: a concurrent reader never sees half a file
    return out


def _features(inception: Any, images: torch.Tensor, chunk: int = 100) -> torch.Tensor:
    return extract_features(inception, [images[i:i + chunk] for i in range(0, len(images), chunk)])


def generated_images(model: Any, n: int, size: int, attributes: torch.Tensor | None = None,
                     temperature: float | list[float] = 1.0, seed: int = PROTOCOL_SEED, chunk: int = 100) -> torch.Tensor:
    """n samples in [-1,1] at `size` (area-downsampled from the model's size when smaller)."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, n, chunk):
        k = min(chunk, n - i)
        kw = {}
        if getattr(model, "is_conditional", False):
            kw["attributes"] = attributes[i:i + k].to(model.device)
        with torch.no_grad():
            x = model.sample(k, temperature=temperature, generator=generator, **kw).float().cpu()
        if x.shape[-1] != size:
            if x.shape[-1] < size:
                raise ValueError(f"protocol resolution {size} is above the model's {x.shape[-1]} px")
            x = F.adaptive_avg_pool2d(x, size)  # box filter, as the dataset's own downsampling
        out.append(x.clamp(-1, 1))
    return torch.cat(out)


def protocol_scores(model: Any, background: str, size: int | None = None, n: int = PROTOCOL_N,
                    temperature: float | list[float] = 1.0, device: str = "cpu") -> dict[str, Any]:
    """FID/KID of n samples vs n held-out synthfaces, and the data floor, at `size` (default: the model's)."""
    size = int(size or model.image_size)
    real_a, real_b, labels = real_features(size, background, n, device)
    fake = _features(load_inception(device), generated_images(model, n, size, labels, temperature))
    subset = max(2, n // 2)
    d = feature_distances(real_a, fake, kid_subset_size=subset)
    floor = feature_distances(real_a, real_b, kid_subset_size=subset)
    return {"fid": d["frechet"], "kid": d["kid_mean"], "kid_std": d["kid_std"], "fid_floor": floor["frechet"],
            "kid_floor": floor["kid_mean"], "n": n, "resolution": size, "background": background,
            "temperature": temperature, "kid_subset_size": subset, "features": INCEPTION_NAME}


def temperature_label(temperature: float | list[float]) -> str:
    """A temperature as metric keys carry it: 0.6 -> "0.6"; one per level (HVAE) [1, 0.8, 0.3] -> "1-0.8-0.3"."""
    if isinstance(temperature, (list, tuple)):
        return "-".join(f"{float(t):g}" for t in temperature)
    return f"{float(temperature):g}"


def metric_keys(scores: dict[str, Any], model_size: int) -> dict[str, float]:
    """The flat metrics.json keys of one protocol result (suffixed by resolution when not the model's)."""
    n = int(scores["n"])
    suffix = "" if int(scores["resolution"]) == int(model_size) else f"_{int(scores['resolution'])}px"
    label = temperature_label(scores.get("temperature", 1.0))
    if label != "1":
        suffix += f"_T{label}"
    out = {f"fid_{n}{suffix}": scores["fid"], f"kid_{n}{suffix}": scores["kid"],
           f"kid_{n}_std{suffix}": scores["kid_std"], f"fid_floor_{n}{suffix}": scores["fid_floor"]}
    return {k: v for k, v in out.items() if math.isfinite(v)}  # no KID spread below 4 images: left out
