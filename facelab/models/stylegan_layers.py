"""StyleGAN building blocks: equalized-LR layers, modulated convolution, mapping, synthesis, critic.

The generator is StyleGAN-2's (modulated 3×3 convolutions with weight demodulation, learned
constant 4×4 input, per-layer noise with a learned strength), grown progressively as in ProGAN /
StyleGAN-1: one toRGB per resolution, the newest one faded in with α. The discriminator mirrors
it with one fromRGB per resolution and a minibatch-stddev epilogue at 4×4.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from facelab.models.base import randn
from facelab.models.progressive import fade, level_resolution, max_level_for

NOISE_MODES = ("const", "random", "none")


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU(0.2) with gain √2, so equalized-LR layers keep unit activation variance."""
    return F.leaky_relu(x, 0.2) * math.sqrt(2.0)


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at a resolution: channel_base / resolution, capped at channel_max."""
    return max(1, min(channel_base // resolution, channel_max))


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate: N(0,1) weights scaled by lr_mul/√fan_in at run time.

    lr_mul < 1 (the mapping network's 0.01) slows this layer's effective Adam step by lr_mul
    without a separate optimizer group.
    """

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, in] -> [N, out]."""
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return lrelu(x) if self.activate else x


class EqualConv2d(nn.Module):
    """Same-padded convolution with equalized learning rate (weights scaled by 1/√fan_in)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, activate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.gain = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, in, H, W] -> [N, out, H, W]."""
        x = F.conv2d(x, self.weight * self.gain, self.bias, padding=self.weight.shape[-1] // 2)
        return lrelu(x) if self.activate else x


class ModulatedConv2d(nn.Module):
    """StyleGAN-2 modulated convolution: per-sample input scaling by a style, then demodulation.

    Implemented as scale → shared conv → rescale (mathematically equal to per-sample weights),
    which keeps one batched convolution instead of a grouped one: faster on CPU.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int,
                 demodulate: bool = True):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.gain = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
        self.demodulate = demodulate

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """x [N, in, H, W], w [N, w_dim] -> [N, out, H, W]."""
        styles = self.affine(w).float()  # [N, in]
        weight = self.weight * self.gain
        x = x * styles.to(x.dtype)[:, :, None, None]
        x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
        if self.demodulate:
            # 1/‖w·s‖ per sample and output channel, in fp32 even under autocast (rsqrt of sums)
            with torch.autocast(device_type=x.device.type, enabled=False):
                dcoefs = (styles.square() @ weight.float().square().sum(dim=(2, 3)).T + 1e-8).rsqrt()
            x = x * dcoefs.to(x.dtype)[:, :, None, None]
        return x


class StyleLayer(nn.Module):
    """(optional 2× bilinear upsample) → modulated 3×3 conv → noise·strength → bias → lrelu."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim)
        self.upsample = upsample
        self.resolution = resolution
        # strength starts at 0 (StyleGAN-2): noise enters only as training finds it useful
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        # fixed per-layer noise for noise_mode="const": saved with the weights, so images reproduce
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random",
                generator: torch.Generator | None = None) -> torch.Tensor:
        """x [N, in, r/2 or r, ...], w [N, w_dim] -> [N, out, r, r]."""
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.conv(x, w)
        if noise_mode == "random":
            noise = randn((x.shape[0], 1, self.resolution, self.resolution), generator, x.device)
            x = x + (noise * self.noise_strength).to(x.dtype)
        elif noise_mode == "const":
            x = x + (self.noise_const * self.noise_strength).to(x.dtype)
        return lrelu(x + self.bias.to(x.dtype)[:, None, None])


class ToRGB(nn.Module):
    """Modulated 1×1 conv to RGB, without demodulation (colour scale must stay free)."""

    def __init__(self, in_channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, 3, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """x [N, C, r, r], w [N, w_dim] -> [N, 3, r, r]."""
        return self.conv(x, w) + self.bias.to(x.dtype)[:, None, None]


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float,
             cutoff: int | None = None) -> torch.Tensor:
    """Pull ws [N, num_ws, w_dim] towards w_avg by ψ (on the first `cutoff` layers only, if set)."""
    if psi == 1.0:
        return ws
    pulled = w_avg.to(ws.dtype).lerp(ws, psi)
    if cutoff is None or cutoff >= ws.shape[1]:
        return pulled
    return torch.cat([pulled[:, :cutoff], ws[:, cutoff:]], dim=1)


class MappingNetwork(nn.Module):
    """z -> w: 2nd-moment normalisation, then an MLP at lr_mul; tracks w_avg for truncation."""

    def __init__(self, z_dim: int, w_dim: int, num_layers: int, lr_mul: float, w_avg_beta: float):
        super().__init__()
        dims = [z_dim] + [w_dim] * num_layers
        self.net = nn.Sequential(*[EqualLinear(a, b, lr_mul=lr_mul, activate=True)
                                   for a, b in zip(dims[:-1], dims[1:])])
        self.w_avg_beta = w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, num_ws: int, psi: float = 1.0, truncation_cutoff: int | None = None,
                update_w_avg: bool = False) -> torch.Tensor:
        """z [N, z_dim] -> ws [N, num_ws, w_dim] (the same w repeated per layer, truncated by ψ)."""
        z = z.float()
        x = self.net(z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt())
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        ws = x.unsqueeze(1).repeat(1, num_ws, 1)
        return truncate(ws, self.w_avg, psi, truncation_cutoff)


class SynthesisNetwork(nn.Module):
    """ws -> image at a progressive level, fading the newest toRGB in with α.

    w index per layer: level 0 conv → 0, toRGB₀ → 1; level l ≥ 1 convs → 2l−1, 2l, toRGB_l → 2l+1.
    So num_ws = 2·max_level + 2 (10 at 64 px), and level l uses the first 2l + 2.
    """

    def __init__(self, w_dim: int, image_size: int, channel_base: int, channel_max: int):
        super().__init__()
        self.max_level = max_level_for(image_size)
        ch = [channels_at(level_resolution(lv), channel_base, channel_max) for lv in range(self.max_level + 1)]
        self.const = nn.Parameter(torch.randn(ch[0], 4, 4))
        self.blocks = nn.ModuleList([nn.ModuleList([StyleLayer(ch[0], ch[0], w_dim, 4)])])
        for lv in range(1, self.max_level + 1):
            res = level_resolution(lv)
            self.blocks.append(nn.ModuleList([StyleLayer(ch[lv - 1], ch[lv], w_dim, res, upsample=True),
                                              StyleLayer(ch[lv], ch[lv], w_dim, res)]))
        self.to_rgb = nn.ModuleList([ToRGB(c, w_dim) for c in ch])
        self.num_ws = 2 * self.max_level + 2

    def forward(self, ws: torch.Tensor, level: int, alpha: float = 1.0, noise_mode: str = "random",
                generator: torch.Generator | None = None) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> images [N, 3, 4·2^level, 4·2^level] (not clamped)."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        prev_rgb = None
        for lv in range(level + 1):
            first = 0 if lv == 0 else 2 * lv - 1
            for k, layer in enumerate(self.blocks[lv]):
                x = layer(x, ws[:, first + k], noise_mode, generator)
            if lv == level - 1 and alpha < 1.0:
                prev_rgb = self.to_rgb[lv](x, ws[:, 2 * lv + 1])
        rgb = self.to_rgb[level](x, ws[:, 2 * level + 1])
        return rgb if prev_rgb is None else fade(prev_rgb, rgb, alpha)


class StyleGenerator(nn.Module):
    """Mapping + synthesis in one module, so the EMA copy is a plain deepcopy of it."""

    def __init__(self, z_dim: int, w_dim: int, mapping_layers: int, mapping_lr_mul: float,
                 w_avg_beta: float, image_size: int, channel_base: int, channel_max: int):
        super().__init__()
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, mapping_lr_mul, w_avg_beta)
        self.synthesis = SynthesisNetwork(w_dim, image_size, channel_base, channel_max)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append one channel: the mean std of features over groups of samples (ProGAN's diversity cue)."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    while n % g:  # largest group size ≤ group_size that divides the batch
        g -= 1
    y = x.float().reshape(g, -1, c, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt().mean(dim=(1, 2, 3))
    y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y.to(x.dtype)], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4×4 features -> minibatch stddev -> conv -> fc -> logit."""

    def __init__(self, channels: int, mbstd_group: int):
        super().__init__()
        self.mbstd_group = mbstd_group
        self.conv = EqualConv2d(channels + 1, channels, 3)
        self.fc = EqualLinear(channels * 16, channels, activate=True)
        self.out = EqualLinear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, 4, 4] -> logits [N]."""
        x = self.conv(minibatch_stddev(x, self.mbstd_group))
        return self.out(self.fc(x.flatten(1))).squeeze(1)


class ProgressiveDiscriminator(nn.Module):
    """One fromRGB per level; at (level, α) the new fromRGB + block fades in over the old fromRGB."""

    def __init__(self, image_size: int, channel_base: int, channel_max: int, mbstd_group: int = 4):
        super().__init__()
        self.max_level = max_level_for(image_size)
        ch = [channels_at(level_resolution(lv), channel_base, channel_max) for lv in range(self.max_level + 1)]
        self.from_rgb = nn.ModuleList([EqualConv2d(3, c, 1) for c in ch])
        # blocks[l-1] takes level l features down to level l-1: one conv at this resolution, then
        # the channel-changing conv after the 2× average pool (StyleGAN-2's D convolves the second
        # time at the lower resolution too) — a quarter of that conv's FLOPs, and D runs three
        # times per training image, so this is the cheapest place to save on a CPU
        self.blocks = nn.ModuleList([
            nn.Sequential(EqualConv2d(ch[lv], ch[lv], 3), nn.AvgPool2d(2), EqualConv2d(ch[lv], ch[lv - 1], 3))
            for lv in range(1, self.max_level + 1)])
        self.epilogue = DiscriminatorEpilogue(ch[0], mbstd_group)

    def forward(self, images: torch.Tensor, level: int, alpha: float = 1.0) -> torch.Tensor:
        """images [N, 3, 4·2^level, ...] -> logits [N] (float32)."""
        x = self.from_rgb[level](images)
        for lv in range(level, 0, -1):
            x = self.blocks[lv - 1](x)
            if lv == level and alpha < 1.0:
                old = self.from_rgb[lv - 1](F.avg_pool2d(images, 2))
                x = torch.lerp(old.to(x.dtype), x, alpha)
        return self.epilogue(x).float()
