"""HierarchicalVAE: a VD-VAE/NVAE-style top-down VAE with latent groups at rising resolution.

Likelihood: each pixel channel gets a discretised logistic (default) or discretised Gaussian over
the 256 bins of 8-bit data, so ``recon`` and ``kl_k`` are nats per dimension (D = C·H·W) and
``bpd`` = (recon + Σ kl_k) / ln 2 is the negative ELBO in bits/dim, comparable with VD-VAE's
numbers. ``loss`` = recon + β·Σ kl_k. Images out of ``decode``/``sample`` are the likelihood's
per-pixel mean (clamped to [-1, 1]), not pixel noise drawn from it. ``pixel_scale="calibrated"``
replaces the learned per-pixel scale by one analytic scale shared by all pixels (σ-VAE).

Layout: a pixel-unshuffle stem folds patch_size×patch_size pixels into channels (and a
pixel-shuffle head unfolds the likelihood parameters), so the nets run at image_size/patch_size:
patch_size=2 makes 64×64 training ~6× cheaper on CPU; patch_size=1 is VD-VAE's full-resolution
layout. The bottom-up encoder keeps its last activation at every resolution; the top-down decoder
starts from a learned state at the coarsest resolution and, per resolution, runs that resolution's
latent groups (``group_resolutions``, coarse to fine) then ``dec_blocks`` plain blocks. Between
resolutions the state is upsampled by nearest neighbour; ``upsample="dense"`` adds, out of 1x1 and
2x2 maps, a learned linear map of the whole state to every position of the next one.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import register_to_config
from torch import nn

from facelab.models.base import LatentModel, LevelSpec, Temperature, level_temperatures, randn
from facelab.models.hvae_blocks import Block, DenseUpsample, LatentGroup, discretized_log_prob, gaussian_kl, quantize
from facelab.models.latent_prior import GaussianMixturePrior

def calibrated_log_scale(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """σ-VAE's shared scale (Rybkin et al. 2021): log of the batch's RMS error, held constant.

    With a learned scale per pixel the decoder can call small, hard details (eyes, mouths) noise and
    stay blurry there at little cost; one scale for every pixel makes each pixel's error count the
    same, and the analytic optimum needs no parameter (so bundles keep their weights' layout).
    """
    mse = (x.float() - mean.float()).pow(2).mean().detach()
    return 0.5 * torch.log(mse.clamp(min=1e-8)).reshape(1, 1, 1, 1)


#: picks z_k given (k, top-down state h, prior mean, prior log-std)
Picker = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _resolutions(image_size: int, group_resolutions: Sequence[int]) -> list[int]:
    """Resolutions the nets visit, fine to coarse: the halving chain down to 4 plus every group's."""
    if not group_resolutions:
        raise ValueError("need at least one latent group")
    for r in group_resolutions:
        if r < 1 or r > image_size or image_size % r or r & (r - 1):
            raise ValueError(f"group resolution {r} must be a power of two dividing image_size {image_size}")
    if list(group_resolutions) != sorted(group_resolutions):
        raise ValueError("group_resolutions must rise (top-down order: coarse to fine)")
    chain, r = set(group_resolutions), image_size
    while r >= max(4, min(group_resolutions)):
        chain.add(r)
        r //= 2
    return sorted(chain, reverse=True)


class HierarchicalVAE(LatentModel):
    """Top-down hierarchical VAE (VD-VAE/NVAE) with per-level KL, temperatures and fixed-level sampling."""

    kind = "hvae"
    is_encoder = True
    # what init_weights may start fresh when a bundle lacks it: the dense upsamplers are zero at
    # init (the same function as nearest), so a nearest bundle can be fine-tuned into a dense one
    derived_state = ("ups.",)

    def reset_derived_state(self) -> None:
        """Zero the dense upsamplers (after loading a bundle trained with nearest upsampling)."""
        for up in self.ups.values():
            up.reset()

    @register_to_config
    def __init__(self, image_size: int = 64, in_channels: int = 3, width: int = 64,
                 bottleneck_ratio: float = 0.25, group_resolutions: Sequence[int] = (1, 4, 4, 8, 8),
                 latent_channels: int | Sequence[int] = 16, enc_blocks: int = 1, dec_blocks: int = 1,
                 patch_size: int = 2, likelihood: str = "logistic", beta: float = 1.0,
                 beta_warmup_steps: int = 0, grad_clip: float = 200.0, grad_skip_threshold: float = 400.0,
                 free_bits: float = 0.0, kl_weights: Sequence[float] | None = None,
                 pixel_scale: str = "learned", upsample: str = "nearest", top_prior_components: int = 0):
        super().__init__()
        if pixel_scale not in ("learned", "calibrated"):
            raise ValueError(f"pixel_scale must be 'learned' or 'calibrated', got {pixel_scale!r}")
        if upsample not in ("nearest", "dense"):
            raise ValueError(f"upsample must be 'nearest' or 'dense', got {upsample!r}")
        if kl_weights is not None and (len(kl_weights) != len(group_resolutions)
                                       or any(not w > 0 for w in kl_weights)):
            raise ValueError(f"kl_weights needs one positive weight per latent group "
                             f"({len(group_resolutions)}), got {list(kl_weights)}")
        if int(top_prior_components) < 0:
            raise ValueError(f"top_prior_components must be >= 0 (0 = the learned prior), got {top_prior_components}")
        if free_bits < 0:
            raise ValueError(f"free_bits must be >= 0 nats per latent dimension, got {free_bits}")
        if likelihood not in ("logistic", "gaussian"):
            raise ValueError(f"likelihood must be 'logistic' or 'gaussian', got {likelihood!r}")
        self._group_res = [int(r) for r in group_resolutions]
        n_groups = len(self._group_res)
        zcs = [int(latent_channels)] * n_groups if isinstance(latent_channels, int) else list(latent_channels)
        if len(zcs) != n_groups:
            raise ValueError(f"latent_channels has {len(zcs)} entries for {n_groups} groups")
        self._zcs = zcs
        if patch_size < 1 or image_size % patch_size:
            raise ValueError(f"patch_size {patch_size} must divide image_size {image_size}")
        self._res_down = _resolutions(image_size // patch_size, self._group_res)
        self._res_up = self._res_down[::-1]
        mid = max(1, int(width * bottleneck_ratio))
        self._build_encoder(in_channels * patch_size ** 2, width, mid, enc_blocks)
        self._build_decoder(in_channels * patch_size ** 2, width, mid, dec_blocks)
        if int(top_prior_components) > 0:  # fitted after training: training/fit_hvae_prior.py
            self.top_prior = GaussianMixturePrior(int(top_prior_components), zcs[0] * self._group_res[0] ** 2)
        # VD-VAE's update guard: how many optimiser steps were skipped, saved with the weights
        self.register_buffer("skipped_updates", torch.zeros((), dtype=torch.long), persistent=True)

    def _build_encoder(self, stem_in: int, width: int, mid: int, n_blocks: int) -> None:
        """Stem (pixel-unshuffle + 3x3 conv) plus n_blocks residual blocks per resolution, fine to coarse."""
        scale = math.sqrt(1.0 / max(1, n_blocks * len(self._res_down)))
        self.stem = nn.Conv2d(stem_in, width, 3, padding=1)
        self.enc = nn.ModuleList(
            nn.Sequential(*[Block(width, mid, width, r, out_scale=scale) for _ in range(n_blocks)])
            for r in self._res_down)

    def _build_decoder(self, head_out: int, width: int, mid: int, n_blocks: int) -> None:
        """Learned start state, latent groups then n_blocks plain blocks per resolution, output head."""
        scale = math.sqrt(1.0 / max(1, len(self._group_res) + n_blocks * len(self._res_up)))
        r0 = self._res_up[0]
        self.h0 = nn.Parameter(torch.zeros(1, width, r0, r0))
        self.groups = nn.ModuleList(
            LatentGroup(width, mid, zc, r, scale) for zc, r in zip(self._zcs, self._group_res))
        self.dec = nn.ModuleList(
            nn.Sequential(*[Block(width, mid, width, r, out_scale=scale) for _ in range(n_blocks)])
            for r in self._res_up)
        self._stage_groups = [[k for k, gr in enumerate(self._group_res) if gr == r] for r in self._res_up]
        # blocks on 1x1/2x2 maps are pointwise, so a nearest-upsampled state is the same at every
        # position there: "dense" lets the coarse state place things (as a VAE decoder's dense layer)
        dense = self.config.upsample == "dense"
        self.ups = nn.ModuleDict({str(r): DenseUpsample(width, rp, r) for rp, r in
                                  zip(self._res_up, self._res_up[1:]) if dense and rp <= 2})
        # (mean, log-scale) for every pixel channel of a patch; pixel_shuffle unfolds them
        self.head = nn.Conv2d(width, 2 * head_out, 3, padding=1)

    # ---- latent contract -------------------------------------------------------------------

    @property
    def latent_levels(self) -> list[LevelSpec]:
        """One level per latent group, coarse to fine: z_k of shape (C_k, r_k, r_k)."""
        return [LevelSpec(f"z{k}", (c, r, r)) for k, (c, r) in enumerate(zip(self._zcs, self._group_res))]

    def beta_at(self, step: int) -> float:
        """KL weight at a training step: beta, linearly warmed up over beta_warmup_steps if set."""
        warm = int(self.config.beta_warmup_steps)
        frac = 1.0 if warm <= 0 else min(1.0, step / warm)
        return float(self.config.beta) * frac

    def _encoder(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Bottom-up pass: the last activation at every resolution."""
        h = self.stem(F.pixel_unshuffle(x, self.config.patch_size))
        acts = {}
        for r, blocks in zip(self._res_down, self.enc):
            if h.shape[-1] != r:
                h = F.avg_pool2d(h, h.shape[-1] // r)
            h = blocks(h)
            acts[r] = h
        return acts

    def _walk(self, n: int, pick: Picker, stop: int | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Top-down pass choosing each z_k with pick; with stop=k, return the state just before group k."""
        h = self.h0.expand(n, -1, -1, -1)
        zs: list[torch.Tensor] = []
        for i, r in enumerate(self._res_up):
            if h.shape[-1] != r:
                up = self.ups[str(r)](h) if str(r) in self.ups else 0
                h = F.interpolate(h, size=(r, r), mode="nearest") + up
            for k in self._stage_groups[i]:
                if k == stop:
                    return h, zs
                pm, plogstd, feat = self.groups[k].prior_params(h)
                z = pick(k, h, pm, plogstd)
                zs.append(z)
                h = self.groups[k].merge(h, feat, z)
            h = self.dec[i](h)
        return h, zs

    def _head(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-pixel likelihood mean and log-scale (fp32)."""
        out = F.pixel_shuffle(self.head(F.gelu(h)), self.config.patch_size).float()
        c = out.shape[1] // 2
        return out[:, :c], out[:, c:]

    def _as_batch(self, k: int, z: torch.Tensor, n: int) -> torch.Tensor:
        """Level-k latent as [n, C, r, r] on this device: [C, r, r] broadcasts, [1, ...] expands."""
        shape = self.latent_levels[k].shape
        z = torch.as_tensor(z, device=self.device, dtype=torch.float32)
        if tuple(z.shape) == tuple(shape):
            z = z.unsqueeze(0)
        if tuple(z.shape[1:]) != tuple(shape) or z.shape[0] not in (1, n):
            want = ", ".join(map(str, (n, *shape)))
            raise ValueError(f"level {k} needs shape [{want}], got {list(z.shape)}")
        return z.expand(n, *shape)

    # ---- training --------------------------------------------------------------------------

    def forward(self, batch: dict[str, torch.Tensor], step: int = 0) -> dict[str, torch.Tensor]:
        """Negative ELBO per dimension with per-level KL: {"loss", "recon", "kl", "kl_k", "beta", "bpd"}."""
        x = quantize(batch["image"].to(self.device, torch.float32))
        acts = self._encoder(x)
        kls: list[torch.Tensor] = []

        def pick(k: int, h: torch.Tensor, pm: torch.Tensor, plogstd: torch.Tensor) -> torch.Tensor:
            qm, qlogstd = self.groups[k].posterior_params(h, acts[self._group_res[k]], pm, plogstd)
            kls.append(gaussian_kl(qm, qlogstd, pm, plogstd).flatten(1).sum(1).mean())
            return qm + torch.exp(qlogstd) * torch.randn_like(qm)

        h, _ = self._walk(x.shape[0], pick)
        mean, log_scale = self._head(h)
        if self.config.pixel_scale == "calibrated":
            log_scale = calibrated_log_scale(x, mean).expand_as(mean)
        dims = x[0].numel()
        log_px = discretized_log_prob(x, mean, log_scale, self.config.likelihood)
        recon = -log_px.flatten(1).sum(1).mean() / dims
        kl_levels = [kl / dims for kl in kls]
        kl = torch.stack(kl_levels).sum()
        beta = self.beta_at(step)
        out = {"loss": recon + beta * self._kl_penalty(kls) / dims, "recon": recon, "kl": kl,
               "beta": torch.tensor(beta, device=x.device), "bpd": (recon + kl) / math.log(2)}
        out.update({f"kl_{k}": v for k, v in enumerate(kl_levels)})
        return out

    def _kl_penalty(self, kls: list[torch.Tensor]) -> torch.Tensor:
        """Σ_k w_k·max(KL_k, free_bits·dims_k) in nats: a group below its free bits is not pushed to zero.

        Free bits per group (Kingma et al. 2016) keep the coarse groups in use: without them a short
        CPU run let the 1x1 groups collapse and put everything into the 4x4/8x8 ones, whose prior then
        painted blocks. The reported "kl" stays the true KL; only the training loss floors it.
        """
        fb = float(self.config.free_bits)
        floors = [fb * math.prod(spec.shape) for spec in self.latent_levels]
        weights = self.config.kl_weights or [1.0] * len(kls)
        # kl_weights > 1 on fine groups make their information dearer, moving it up into the coarse
        # groups and the deterministic decoder (the CPU run's fine priors painted blocks)
        return torch.stack([float(w) * torch.clamp(kl, min=f) for kl, f, w in zip(kls, floors, weights)]).sum()

    def loss(self, batch: dict[str, torch.Tensor], step: int = 0) -> dict[str, torch.Tensor]:
        """Training losses for one batch (calls forward so DDP hooks run)."""
        return self(batch, step)

    def configure_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        """AdamW with VD-VAE's settings (betas 0.9/0.9, weight decay 0.01); lr defaults to 2e-4."""
        opt = torch.optim.AdamW(self.parameters(), lr=2e-4 if lr is None else lr,
                                betas=(0.9, 0.9), eps=1e-8, weight_decay=0.01)
        return {"model": opt}

    def should_skip_update(self, grad_norm: float | torch.Tensor) -> bool:
        """True (and counted in skipped_updates) for a non-finite norm or one above grad_skip_threshold."""
        g = float(grad_norm)
        threshold = float(self.config.grad_skip_threshold)
        skip = not math.isfinite(g) or (threshold > 0 and g > threshold)
        if skip:
            self.skipped_updates += 1
        return skip

    # ---- inference -------------------------------------------------------------------------

    def encode(self, images: torch.Tensor, **kwargs) -> list[torch.Tensor]:
        """Posterior means per level; each is computed given the state built from the means above it."""
        return [mean for mean, _ in self.encode_posteriors(images)]

    def encode_posteriors(self, images: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Posterior (mean, log-std) per level, each given the posterior means above it (as encode)."""
        x = quantize(images.to(self.device, torch.float32))
        acts = self._encoder(x)
        out: list[tuple[torch.Tensor, torch.Tensor]] = []

        def pick(k: int, h: torch.Tensor, pm: torch.Tensor, plogstd: torch.Tensor) -> torch.Tensor:
            out.append(self.groups[k].posterior_params(h, acts[self._group_res[k]], pm, plogstd))
            return out[-1][0]

        self._walk(x.shape[0], pick)
        return out

    def decode(self, levels: list[torch.Tensor], **kwargs) -> torch.Tensor:
        """Images in [-1, 1] from one latent per level (all levels given)."""
        if len(levels) != len(self._group_res):
            raise ValueError(f"decode needs {len(self._group_res)} levels, got {len(levels)}")
        n = max(z.shape[0] if z.dim() == 4 else 1 for z in levels)
        zs = [self._as_batch(k, z, n) for k, z in enumerate(levels)]
        h, _ = self._walk(n, lambda k, h, pm, plogstd: zs[k])
        return self._head(h)[0].clamp(-1, 1)

    @torch.no_grad()
    def sample(self, n: int, temperature: Temperature = 1.0, generator: torch.Generator | None = None,
               fixed: dict[int, torch.Tensor] | None = None, return_latents: bool = False,
               **kwargs) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Draw n images; levels in fixed are kept exactly, the rest come from the prior given those above."""
        temps = level_temperatures(temperature, len(self._group_res))
        fixed_b = {int(k): self._as_batch(int(k), z, n) for k, z in (fixed or {}).items()}
        if self.has_top_prior and 0 not in fixed_b:
            fixed_b[0] = self._top_draw(n, temps[0], generator)

        def pick(k: int, h: torch.Tensor, pm: torch.Tensor, plogstd: torch.Tensor) -> torch.Tensor:
            if k in fixed_b:
                return fixed_b[k]
            return self._draw(pm, plogstd, temps[k], generator)

        h, zs = self._walk(n, pick)
        images = self._head(h)[0].clamp(-1, 1)
        return (images, zs) if return_latents else images

    @property
    def has_top_prior(self) -> bool:
        """Whether level 0 is drawn from a fitted mixture (top_prior_components > 0) instead of its learned prior."""
        return "top_prior" in self._modules

    def _top_draw(self, n: int, t: float, generator: torch.Generator | None) -> torch.Tensor:
        """n level-0 latents from the fitted mixture at temperature t."""
        return self.top_prior.sample(n, t, generator).view(n, *self.latent_levels[0].shape)

    @staticmethod
    def _draw(pm: torch.Tensor, plogstd: torch.Tensor, t: float,
              generator: torch.Generator | None) -> torch.Tensor:
        """pm + t·σ·ε; t = 0 returns the prior mean itself (no noise, no 0·inf)."""
        if t == 0:
            return pm
        return pm + t * torch.exp(plogstd) * randn(pm.shape, generator, pm.device)

    def _prior(self, previous: list[torch.Tensor], n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Prior mean and log-std of level len(previous) given the frozen levels before it."""
        k = len(previous)
        if k >= len(self._group_res):
            raise ValueError(f"all {k} levels already given")
        if n is None:
            n = max([z.shape[0] for z in previous if z.dim() == 4] or [1])
        zs = [self._as_batch(j, z, n) for j, z in enumerate(previous)]
        h, _ = self._walk(n, lambda j, h, pm, plogstd: zs[j], stop=k)
        pm, plogstd, _ = self.groups[k].prior_params(h)
        return pm, plogstd

    @torch.no_grad()
    def prior_params(self, previous: list[torch.Tensor],
                     n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Prior mean and std of level len(previous) given the frozen levels before it."""
        if not previous and self.has_top_prior:  # the mixture summarised as one Gaussian
            mean, std = self.top_prior.moments()
            shape = (n or 1, *self.latent_levels[0].shape)
            return mean.view(1, *shape[1:]).expand(shape), std.view(1, *shape[1:]).expand(shape)
        pm, plogstd = self._prior(previous, n)
        return pm, torch.exp(plogstd)

    @torch.no_grad()
    def sample_level(self, k: int, previous: list[torch.Tensor], n: int | None = None,
                     temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw level k from the prior given frozen levels 0..k-1 (seed 000's level-by-level sampling)."""
        if len(previous) != k:
            raise ValueError(f"sample_level({k}) needs the {k} levels before it, got {len(previous)}")
        if k == 0 and self.has_top_prior:
            return self._top_draw(n or 1, float(temperature), generator)
        pm, plogstd = self._prior(previous, n)
        return self._draw(pm, plogstd, float(temperature), generator)
