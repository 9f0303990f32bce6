"""Progressive growing (ProGAN / StyleGAN-1 schedule, fade-in blending) and seed 002's LR decay.

The schedule is counted in images shown, not steps, so it does not depend on the batch size
or on the number of processes: level 0 (4×4) trains ``stable_images``; every later level first
fades in over ``fade_images`` (α rising linearly 0 → 1), then trains ``stable_images`` at α = 1.
After the last phase the model stays at the top level with α = 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


@dataclass(frozen=True)
class ProgressiveSchedule:
    """Images per phase and the number of levels above 4×4 (max_level = log2(size) − 2)."""

    max_level: int
    fade_images: int
    stable_images: int

    @property
    def total_images(self) -> int:
        """Images until the top level is fully faded in and has had its stable phase."""
        return self.stable_images + self.max_level * (self.fade_images + self.stable_images)

    def progress(self, images_seen: int) -> tuple[int, float]:
        """(level, α) after images_seen training images."""
        t = max(int(images_seen), 0) - self.stable_images
        if t < 0 or self.max_level == 0:
            return 0, 1.0
        period = self.fade_images + self.stable_images
        if period <= 0:  # no phases configured: straight to the top level
            return self.max_level, 1.0
        level = t // period + 1
        if level > self.max_level:
            return self.max_level, 1.0
        within = t - (level - 1) * period
        alpha = 1.0 if self.fade_images == 0 else min(within / self.fade_images, 1.0)
        return int(level), float(alpha)


def level_resolution(level: int) -> int:
    """Side length at a level: 4 · 2^level."""
    return 4 * 2 ** int(level)


def max_level_for(image_size: int) -> int:
    """Top level for a power-of-two image size ≥ 4 (64 px → 4)."""
    if image_size < 4 or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two ≥ 4, got {image_size}")
    return int(math.log2(image_size)) - 2


def fade(low: torch.Tensor, high: torch.Tensor, alpha: float) -> torch.Tensor:
    """α·high + (1 − α)·nearest-upsample(low): ProGAN's fade-in of a new toRGB output."""
    if alpha >= 1.0:
        return high
    return torch.lerp(F.interpolate(low, size=high.shape[-2:], mode="nearest").to(high.dtype), high, alpha)


def resize_to(images: torch.Tensor, size: int) -> torch.Tensor:
    """Area-downsample (or nearest-upsample) square images to size×size."""
    h = images.shape[-1]
    if h == size:
        return images
    if h > size:
        return F.adaptive_avg_pool2d(images, size)  # box filter: exact average of 2^k blocks
    return F.interpolate(images, size=(size, size), mode="nearest")


def blend_reals(images: torch.Tensor, level: int, alpha: float) -> torch.Tensor:
    """Real images as D sees them at (level, α): fading between this and the previous resolution.

    ProGAN blends reals the same way as fakes, so D cannot tell them apart by the fade artefact.
    """
    res = level_resolution(level)
    cur = resize_to(images, res)
    if alpha >= 1.0 or level == 0:
        return cur
    return fade(resize_to(images, res // 2), cur, alpha)


def inverse_sigmoid_decay(step: int, total_steps: int, steepness: float = 10.0,
                          midpoint: float = 0.5, min_factor: float = 0.0) -> float:
    """LR multiplier falling along an inverse sigmoid from 1 at step 0 towards min_factor.

    f(t) = (1 + e^{−k·m}) / (1 + e^{k·(t/T − m)}): flat at first, steepest at t = m·T, flat again
    near the end — seed 002 used this shape so every dataset trains the same time at each LR.
    """
    if total_steps <= 0:
        return 1.0
    t = min(max(step / total_steps, 0.0), 1.0)
    f = (1.0 + math.exp(-steepness * midpoint)) / (1.0 + math.exp(steepness * (t - midpoint)))
    return min_factor + (1.0 - min_factor) * f


def get_inverse_sigmoid_schedule(optimizer: Optimizer, total_steps: int, steepness: float = 10.0,
                                 midpoint: float = 0.5, min_factor: float = 0.0,
                                 last_epoch: int = -1) -> LambdaLR:
    """A LambdaLR applying inverse_sigmoid_decay (same call shape as diffusers' get_scheduler)."""
    def lr_lambda(step: int) -> float:
        """Multiplier at this scheduler step."""
        return inverse_sigmoid_decay(step, total_steps, steepness, midpoint, min_factor)

    return LambdaLR(optimizer, lr_lambda, last_epoch=last_epoch)
