"""Encoder/decoder networks for the flat VAEs: a seed-003-style conv stack and a residual variant.

Both map images [N,C,S,S] to a flat feature vector at ``bottom`` × ``bottom`` resolution and
back. The number of down-samplings is derived from the image size; channel widths double per
level (capped at ``max_channels``), so full-resolution layers stay narrow: that, not precision
tricks, is what makes the default VAE cheap on CPU (bf16 is emulated, i.e. slow, on AVX2-only CPUs).
"""

from __future__ import annotations

import math

import torch
from diffusers.models.resnet import Downsample2D, ResnetBlock2D, Upsample2D
from torch import nn

ARCHS = ("conv", "resnet")
NORMS = ("batch", "group", "none")


def num_downsamples(image_size: int, bottom: int) -> int:
    """How many ×2 down-samplings take image_size to bottom (both powers of two)."""
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
    if bottom < 1 or bottom & (bottom - 1) or bottom >= image_size:
        raise ValueError(f"bottom must be a power of two below image_size, got {bottom}")
    return int(math.log2(image_size // bottom))


def level_widths(n_levels: int, base: int, cap: int) -> list[int]:
    """Channels at levels 1..n_levels (level l has resolution size / 2**l): base·2**(l-1), capped."""
    return [min(base * 2 ** i, cap) for i in range(n_levels)]


def _groups(channels: int) -> int:
    """GroupNorm groups: up to 32, at least 4 channels a group, dividing the channel count."""
    g = min(32, max(channels // 4, 1))
    while channels % g:
        g -= 1
    return g


def make_norm(kind: str, channels: int) -> nn.Module:
    """BatchNorm (seed 003), GroupNorm (batch-independent) or identity."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(_groups(channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; expected one of {NORMS}")


def _conv_block(conv: nn.Module, channels: int, norm: str) -> nn.Sequential:
    """conv → norm → LeakyReLU(0.2), the seed-003 unit."""
    return nn.Sequential(conv, make_norm(norm, channels), nn.LeakyReLU(0.2, inplace=True))


class ConvEncoder(nn.Module):
    """Strided 3×3 conv + norm + LeakyReLU per level, widths doubling (seed 003 style)."""

    def __init__(self, channels: int, image_size: int, base: int, cap: int, bottom: int, norm: str):
        super().__init__()
        widths = level_widths(num_downsamples(image_size, bottom), base, cap)
        layers, c_in = [], channels
        for c_out in widths:
            layers.append(_conv_block(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), c_out, norm))
            c_in = c_out
        self.net = nn.Sequential(*layers)
        self.out_features = widths[-1] * bottom * bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images [N,C,S,S] → flat features [N, out_features]."""
        return self.net(x).flatten(1)


class ConvDecoder(nn.Module):
    """Mirror of ConvEncoder with 4×4 stride-2 transposed convs (even overlap: no checkerboard)."""

    def __init__(self, channels: int, image_size: int, base: int, cap: int, bottom: int, norm: str):
        super().__init__()
        widths = level_widths(num_downsamples(image_size, bottom), base, cap)
        self.shape = (widths[-1], bottom, bottom)
        layers = []
        for c_in, c_out in zip(widths[:0:-1], widths[-2::-1]):
            layers.append(_conv_block(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), c_out, norm))
        # the last up-sampling writes the output directly: no wide layer at full resolution
        layers.append(nn.ConvTranspose2d(widths[0], channels, 4, stride=2, padding=1))
        self.net = nn.Sequential(*layers)
        self.in_features = widths[-1] * bottom * bottom

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Flat features [N, in_features] → output logits [N,C,S,S]."""
        return self.net(h.view(h.shape[0], *self.shape))


class ResEncoder(nn.Module):
    """Residual variant: diffusers ResnetBlock2D (GroupNorm + SiLU) then Downsample2D per level."""

    def __init__(self, channels: int, image_size: int, base: int, cap: int, bottom: int):
        super().__init__()
        widths = level_widths(num_downsamples(image_size, bottom), base, cap)
        # stride-2 stem: the first residual block already runs at half resolution
        self.stem = nn.Conv2d(channels, widths[0], 3, stride=2, padding=1)
        blocks, c_in = [], widths[0]
        for i, c_out in enumerate(widths):
            blocks.append(_resblock(c_in, c_out))
            if i < len(widths) - 1:
                blocks.append(Downsample2D(c_out, use_conv=True, out_channels=c_out, padding=1))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Sequential(nn.GroupNorm(_groups(c_in), c_in), nn.SiLU())
        self.out_features = widths[-1] * bottom * bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images [N,C,S,S] → flat features [N, out_features]."""
        h = self.stem(x)
        for block in self.blocks:
            h = block(h, None) if isinstance(block, ResnetBlock2D) else block(h)
        return self.out(h).flatten(1)


class ResDecoder(nn.Module):
    """Residual variant of the decoder: ResnetBlock2D then Upsample2D (nearest + conv) per level."""

    def __init__(self, channels: int, image_size: int, base: int, cap: int, bottom: int):
        super().__init__()
        widths = level_widths(num_downsamples(image_size, bottom), base, cap)
        self.shape = (widths[-1], bottom, bottom)
        blocks, c_in = [], widths[-1]
        for i, c_out in enumerate(widths[::-1]):
            blocks.append(_resblock(c_in, c_out))
            if i < len(widths) - 1:
                blocks.append(Upsample2D(c_out, use_conv=True, out_channels=c_out))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Sequential(nn.GroupNorm(_groups(c_in), c_in), nn.SiLU(),
                                 nn.ConvTranspose2d(c_in, channels, 4, stride=2, padding=1))
        self.in_features = widths[-1] * bottom * bottom

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Flat features [N, in_features] → output logits [N,C,S,S]."""
        h = h.view(h.shape[0], *self.shape)
        for block in self.blocks:
            h = block(h, None) if isinstance(block, ResnetBlock2D) else block(h)
        return self.out(h)


def _resblock(c_in: int, c_out: int) -> ResnetBlock2D:
    """A diffusers ResnetBlock2D without time embedding."""
    return ResnetBlock2D(in_channels=c_in, out_channels=c_out, temb_channels=None,
                         groups=_groups(c_in), groups_out=_groups(c_out))


def build_nets(arch: str, channels: int, image_size: int, base: int, cap: int, bottom: int,
               norm: str) -> tuple[nn.Module, nn.Module]:
    """(encoder, decoder) for arch "conv" (norm as given) or "resnet" (always GroupNorm)."""
    if arch == "conv":
        return (ConvEncoder(channels, image_size, base, cap, bottom, norm),
                ConvDecoder(channels, image_size, base, cap, bottom, norm))
    if arch == "resnet":
        return (ResEncoder(channels, image_size, base, cap, bottom),
                ResDecoder(channels, image_size, base, cap, bottom))
    raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHS}")
