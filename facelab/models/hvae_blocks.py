"""Building blocks of the hierarchical VAE: VD-VAE bottleneck blocks, latent groups, likelihoods."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: PixelCNN++'s floor on the log-scale: keeps exp() finite and bins resolvable.
MIN_LOG_SCALE = -7.0
#: half a bin of 8-bit data mapped onto [-1, 1]
HALF_BIN = 1.0 / 255.0


class Block(nn.Module):
    """VD-VAE bottleneck block: GELU -> 1x1 -> 3x3 -> 3x3 -> 1x1, optional residual."""

    def __init__(self, c_in: int, c_mid: int, c_out: int, res: int, residual: bool = True,
                 out_scale: float = 1.0, zero_out: bool = False):
        super().__init__()
        # 3x3 convs on 1x1/2x2 maps only see zero padding: use 1x1 there as VD-VAE does
        k = 3 if res > 2 else 1
        self.c1 = nn.Conv2d(c_in, c_mid, 1)
        self.c2 = nn.Conv2d(c_mid, c_mid, k, padding=k // 2)
        self.c3 = nn.Conv2d(c_mid, c_mid, k, padding=k // 2)
        self.c4 = nn.Conv2d(c_mid, c_out, 1)
        self.residual = residual
        with torch.no_grad():
            if zero_out:
                self.c4.weight.zero_()
                self.c4.bias.zero_()
            else:
                # VD-VAE scales the last conv by sqrt(1/depth) so deep residual stacks start stable
                self.c4.weight.mul_(out_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        h = self.c1(F.gelu(x))
        h = self.c2(F.gelu(h))
        h = self.c3(F.gelu(h))
        h = self.c4(F.gelu(h))
        return x + h if self.residual else h


class DenseUpsample(nn.Module):
    """A linear map from a whole r_in x r_in state to an r_out x r_out one, zero at init.

    Added to the nearest-upsampled state: it gives each position of the finer map its own function
    of the coarse code, which pointwise blocks on 1x1/2x2 maps cannot (VD-VAE's nearest upsampling
    copies one vector to every position there).
    """

    def __init__(self, width: int, r_in: int, r_out: int):
        super().__init__()
        self.width, self.r_out = width, r_out
        self.linear = nn.Linear(width * r_in * r_in, width * r_out * r_out)
        self.reset()

    def reset(self) -> None:
        """Zero weights and bias: the upsampler starts as plain nearest upsampling."""
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.bias.zero_()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """The position-dependent term, [n, width, r_out, r_out]."""
        out = self.linear(F.gelu(h).flatten(1))
        return out.view(h.shape[0], self.width, self.r_out, self.r_out)


class LatentGroup(nn.Module):
    """One top-down latent group: prior p(z_k | h), residual posterior q(z_k | h, x), merge of z_k into h."""

    def __init__(self, width: int, mid: int, zc: int, res: int, out_scale: float):
        super().__init__()
        self.zc = zc
        self.prior = Block(width, mid, 2 * zc + width, res, residual=False)
        # zero-initialised: q starts equal to p (KL 0), and the encoder learns a delta on top
        self.posterior = Block(2 * width, mid, 2 * zc, res, residual=False, zero_out=True)
        self.z_proj = nn.Conv2d(zc, width, 1)
        self.resnet = Block(width, mid, width, res, residual=True, out_scale=out_scale)
        with torch.no_grad():
            self.z_proj.weight.mul_(out_scale)

    def prior_params(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Prior mean and log-std of z_k (fp32), plus the feature the prior adds to the state."""
        out = self.prior(h)
        pm, plogstd, feat = out[:, :self.zc], out[:, self.zc:2 * self.zc], out[:, 2 * self.zc:]
        return pm.float(), plogstd.float(), feat

    def posterior_params(self, h: torch.Tensor, enc: torch.Tensor, pm: torch.Tensor,
                         plogstd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """NVAE-style residual posterior: prior params plus a delta read from (state, encoder acts)."""
        delta = self.posterior(torch.cat([h, enc.to(h.dtype)], dim=1)).float()
        return pm + delta[:, :self.zc], plogstd + delta[:, self.zc:]

    def merge(self, h: torch.Tensor, feat: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Fold the prior feature and the chosen z_k into the top-down state."""
        h = h + feat
        h = h + self.z_proj(z.to(h.dtype))
        return self.resnet(h)


def gaussian_kl(qm: torch.Tensor, qlogstd: torch.Tensor, pm: torch.Tensor,
                plogstd: torch.Tensor) -> torch.Tensor:
    """Elementwise KL(N(qm, e^qlogstd) || N(pm, e^plogstd)) in nats."""
    var_ratio = torch.exp(2.0 * (qlogstd - plogstd))
    mean_term = ((qm - pm) * torch.exp(-plogstd)).pow(2)
    return 0.5 * (var_ratio + mean_term - 1.0) - (qlogstd - plogstd)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Snap [-1, 1] images to the 256 levels of 8-bit data (the bins the likelihood scores)."""
    return torch.round((x.clamp(-1, 1) + 1) * 127.5) / 127.5 - 1


def discretized_log_prob(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor,
                         family: str = "logistic") -> torch.Tensor:
    """Elementwise log-probability of 8-bit pixels x in [-1, 1] under a discretised logistic/Gaussian.

    Edge bins take the tail mass (PixelCNN++), so values are log-probabilities of 256 bins and
    -sum/(D ln 2) is bits/dim.
    """
    x, mean = x.float(), mean.float()
    log_scale = log_scale.float().clamp(min=MIN_LOG_SCALE)
    inv_s = torch.exp(-log_scale)
    centered = x - mean
    plus_in = inv_s * (centered + HALF_BIN)
    min_in = inv_s * (centered - HALF_BIN)
    mid_in = inv_s * centered
    if family == "logistic":
        log_cdf_plus = F.logsigmoid(plus_in)
        log_sf_min = F.logsigmoid(-min_in)
        delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
        log_pdf_mid = mid_in - log_scale - 2.0 * F.softplus(mid_in)
    elif family == "gaussian":
        log_cdf_plus = torch.special.log_ndtr(plus_in)
        log_sf_min = torch.special.log_ndtr(-min_in)
        delta = torch.special.ndtr(plus_in) - torch.special.ndtr(min_in)
        log_pdf_mid = -0.5 * mid_in.pow(2) - log_scale - 0.5 * math.log(2 * math.pi)
    else:
        raise ValueError(f"unknown likelihood family {family!r}")
    # when the bin mass underflows, fall back to density × bin width (2/255)
    log_mid = torch.where(delta > 1e-5, torch.log(delta.clamp(min=1e-12)),
                          log_pdf_mid + math.log(2 * HALF_BIN))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_sf_min, log_mid))
