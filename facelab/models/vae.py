"""VAE (α·reconstruction + β·KL with β schedules) and ConditionalVAE; β-VAE is VAE(beta>1).

Loss reduction (all reconstruction kinds): every term is a **per-sample sum** over pixels
(reconstruction, C·H·W terms) or latent dimensions (KL), then a mean over the batch, so
"recon" and "kl" are in nats per image and β has its textbook meaning (β = 1: the ELBO).
"mse" = Σ (x̂ − x)² on [-1, 1] images; "bce" = Σ Bernoulli cross-entropy on images mapped to
[0, 1] (not zero at a perfect fit, since targets are continuous); "gaussian" = Σ −log N(x; x̂, σ²)
with one fixed or learned log σ, a proper density, reported also as "bits_per_dim" (data
rescaled to [0, 256), the usual dequantised convention).

The decoder outputs logits h; the image mean is tanh(h / 2) = 2·sigmoid(h) − 1, so bce uses
the logits directly (stable) and all kinds share one output layer.

Weak supervision (``pair_averaging="ada_gvae"``, Locatello et al. 2020): trained on pairs of faces
that share all but a few unknown factors (data.pairs on synthfaces), the encoder's posteriors are
averaged over the dimensions it judges shared (ada_gvae_average) before the ELBO of both faces.
That pushes each factor into its own dimensions; the model is a plain VAE at inference.

Foreground weighting (``background_weight`` w < 1): in training, each pixel's reconstruction term is
scaled by m + w·(1 − m) with the item's foreground mask m (synthfaces ground truth, rembg masks of
prepared real datasets), so the decoder spends less capacity on background texture and more on the
face. Evaluation (eval mode) always uses the plain, unweighted ELBO, so bits/dim stay comparable.

Feature matching (``perceptual_weight`` > 0, facelab.models.perceptual): in training, adds that weight
× the distance of x̂ from x in a frozen CNN's feature maps ("random" weights, or an attribute
classifier folder — label supervision), so small face details weigh more than their pixel count.

Pair-difference weighting (``pair_difference_weight`` λ > 0, with Ada-GVAE pairs): in training, adds λ × the
squared error on the pair's difference image (pair_difference_error), so what changed within a pair — one
factor when k = 1 — weighs (1 + λ)-fold against what the pair shares (nuisance, background texture). Still
weak supervision: the model is never told which factor changed.

BatchNorm caveat (arch "conv", norm "batch"): in train mode encode/decode/sample normalise
with batch statistics, so outputs depend on the rest of the batch; ``sample`` and ``encode`` use
the module's current mode, and are deterministic only in eval mode (the app calls ``eval()``).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import register_to_config
from torch import nn

from facelab.models.base import LatentModel, LevelSpec, Temperature, level_temperatures, randn
from facelab.models.latent_prior import ConditionalGaussianPrior
from facelab.models.perceptual import FeatureLoss, build_feature_net
from facelab.models.schedules import BetaSchedule
from facelab.models.vae_nets import build_nets

RECON_KINDS = ("mse", "bce", "gaussian")
PAIR_AVERAGING = ("none", "ada_gvae")
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) ‖ N(0, 1)) per dimension, same shape as mu."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def ada_gvae_average(mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Average the posteriors of a pair batch [2B, D] (first half vs second) over the dimensions judged shared.

    Ada-GVAE's rule: per pair, δ_j = KL(q(z_j|x1) ‖ q(z_j|x2)); dimensions with δ_j below the midpoint of
    the pair's smallest and largest δ are shared and both faces get the averaged Gaussian there
    (mean of means, mean of variances). Returns (mu, logvar) [2B, D] and the shared mask [B, D].
    """
    mu1, mu2 = mu.chunk(2)
    lv1, lv2 = logvar.chunk(2)
    with torch.no_grad():  # the split is a discrete choice; gradients flow through the averaged posteriors
        delta = 0.5 * ((lv1 - lv2).exp() + (mu2 - mu1).pow(2) * (-lv2).exp() - 1.0 + lv2 - lv1)
        threshold = 0.5 * (delta.amax(1, keepdim=True) + delta.amin(1, keepdim=True))
        shared = delta <= threshold
    mean = 0.5 * (mu1 + mu2)
    log_var = torch.log(0.5 * (lv1.exp() + lv2.exp()))
    mu1, mu2 = torch.where(shared, mean, mu1), torch.where(shared, mean, mu2)
    lv1, lv2 = torch.where(shared, log_var, lv1), torch.where(shared, log_var, lv2)
    return torch.cat([mu1, mu2]), torch.cat([lv1, lv2]), shared


def pair_difference_error(x: torch.Tensor, logits: torch.Tensor, kind: str, log_sigma: torch.Tensor | None = None,
                          weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pair ¼·Σ ((x̂1 − x̂2) − (x1 − x2))² [B] of a pair batch [2B,...] (first half vs second).

    The pair-average "mse" loss splits exactly as ¼·Σ(e1 + e2)² + ¼·Σ(e1 − e2)² (e = x̂ − x): a part the pair
    shares (nuisance, background texture, the unchanged factors) and the error on what differs. This is the
    second part; adding λ times it weights the changed factors' pixels (1 + λ)-fold.
    """
    if kind == "bce":
        raise ValueError("pair_difference_weight needs recon 'mse' or 'gaussian' (a squared error), not 'bce'")
    e1, e2 = (torch.tanh(logits / 2) - x).chunk(2)
    per_pixel = 0.25 * (e1 - e2).pow(2)
    if kind == "gaussian":
        if log_sigma is None:
            raise ValueError("gaussian reconstruction needs log_sigma")
        per_pixel = 0.5 * per_pixel * torch.exp(-2.0 * log_sigma)
    if weight is not None:  # the pair's two foreground weights, averaged
        per_pixel = per_pixel * 0.5 * sum(weight.chunk(2))
    return per_pixel.flatten(1).sum(1)


def reconstruction_nll(x: torch.Tensor, logits: torch.Tensor, kind: str,
                       log_sigma: torch.Tensor | None = None, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample reconstruction loss [N] (sum over C·H·W) of images x in [-1, 1] given decoder logits.

    weight [N,1,H,W] (optional) scales each pixel's term, e.g. to down-weight the background.
    """
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(logits, (x + 1) / 2, reduction="none")
    elif kind == "mse":
        per_pixel = (torch.tanh(logits / 2) - x).pow(2)
    elif kind == "gaussian":
        if log_sigma is None:
            raise ValueError("gaussian reconstruction needs log_sigma")
        z = (x - torch.tanh(logits / 2)) * torch.exp(-log_sigma)
        per_pixel = 0.5 * z.pow(2) + log_sigma + _HALF_LOG_2PI
    else:
        raise ValueError(f"unknown reconstruction {kind!r}; expected one of {RECON_KINDS}")
    if weight is not None:
        per_pixel = per_pixel * weight
    return per_pixel.flatten(1).sum(1)


def foreground_weight(masks: torch.Tensor | None, background_weight: float) -> torch.Tensor | None:
    """Per-pixel loss weight m + w·(1 − m) from foreground masks [N,1,H,W]; None when w is 1."""
    if background_weight == 1.0:
        return None
    if masks is None:
        raise ValueError(f"background_weight={background_weight} needs foreground masks in the batch: synthfaces "
                         "items carry them; for folders / CelebA / FFHQ run training/prepare_data.py first so "
                         "items carry their rembg masks")
    m = masks.float().clamp(0.0, 1.0)
    return m + background_weight * (1.0 - m)


class VAE(LatentModel):
    """Convolutional VAE with one flat Gaussian latent; loss α·recon + β(step)·KL (or capacity term).

    The default config (arch "conv", 16 channels at half resolution doubling per level up to 256,
    4×4 bottom, BatchNorm, fused Adam) is the fast CPU default: about 3× the training throughput of
    the seed-003 network (64 channels at every level, a 64-channel layer at full resolution) and a
    lower reconstruction error after the same number of images (benchmarks/bench_vae_speed.py).
    ``arch="resnet"`` is the residual variant built from diffusers blocks.
    """

    kind = "vae"
    is_encoder = True

    @register_to_config
    def __init__(self, image_size: int = 64, channels: int = 3, latent_dim: int = 64, arch: str = "conv",
                 base_channels: int = 16, max_channels: int = 256, bottom_size: int = 4, norm: str = "batch",
                 recon: str = "mse", alpha: float = 1.0, log_sigma: float = 0.0, learn_sigma: bool = True,
                 beta_schedule: str = "constant", beta: float = 1.0, warmup_steps: int = 0,
                 cycle_steps: int = 10_000, cycle_ratio: float = 0.5, gamma: float = 1000.0,
                 c_max: float = 25.0, c_steps: int = 100_000, beta_final: float | None = None,
                 beta_final_start: int = 0, beta_final_steps: int = 0, lr: float = 1e-3,
                 pair_averaging: str = "none", background_weight: float = 1.0,
                 perceptual_weight: float = 0.0, perceptual_net: str = "random", pair_difference_weight: float = 0.0):
        super().__init__()
        if float(pair_difference_weight) < 0.0:
            raise ValueError(f"pair_difference_weight must be >= 0 (0 = plain loss), got {pair_difference_weight!r}")
        if float(pair_difference_weight) > 0.0 and (pair_averaging == "none" or recon == "bce"):
            raise ValueError("pair_difference_weight weights the error on what differs within a pair: it needs "
                             "pair_averaging='ada_gvae' (pairs) and recon 'mse' or 'gaussian'")
        self._build(cond_dim=0)

    def _build(self, cond_dim: int) -> None:
        """Create the networks, σ and the β schedule from self.config (shared with ConditionalVAE)."""
        cfg = self.config
        if cfg.recon not in RECON_KINDS:
            raise ValueError(f"unknown reconstruction {cfg.recon!r}; expected one of {RECON_KINDS}")
        if cfg.pair_averaging not in PAIR_AVERAGING:
            raise ValueError(f"unknown pair_averaging {cfg.pair_averaging!r}; expected one of {PAIR_AVERAGING}")
        if not 0.0 <= float(cfg.background_weight) <= 1.0:
            raise ValueError(f"background_weight must be in [0, 1] (1 = plain loss), got {cfg.background_weight!r}")
        if float(cfg.perceptual_weight) < 0.0:
            raise ValueError(f"perceptual_weight must be >= 0 (0 = pixel loss only), got {cfg.perceptual_weight!r}")
        self.encoder, self.decoder = build_nets(cfg.arch, cfg.channels, cfg.image_size, cfg.base_channels,
                                                cfg.max_channels, cfg.bottom_size, cfg.norm)
        self.to_posterior = nn.Linear(self.encoder.out_features + cond_dim, 2 * cfg.latent_dim)
        self.from_latent = nn.Linear(cfg.latent_dim + cond_dim, self.decoder.in_features)
        # always a parameter so checkpoints have one layout; frozen unless learned
        self.decoder_log_sigma = nn.Parameter(torch.tensor(float(cfg.log_sigma)),
                                              requires_grad=bool(cfg.learn_sigma and cfg.recon == "gaussian"))
        self.schedule = BetaSchedule(kind=cfg.beta_schedule, beta=cfg.beta, warmup_steps=cfg.warmup_steps,
                                     cycle_steps=cfg.cycle_steps, ratio=cfg.cycle_ratio, gamma=cfg.gamma,
                                     c_max=cfg.c_max, c_steps=cfg.c_steps, final_beta=cfg.beta_final,
                                     final_start=cfg.beta_final_start, final_steps=cfg.beta_final_steps)

    @property
    def latent_levels(self) -> list[LevelSpec]:
        """One flat level "z" of latent_dim scalars."""
        return [LevelSpec("z", (int(self.config.latent_dim),))]

    def _posterior(self, images: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z | x[, a])."""
        h = self.encoder(images)
        if cond is not None:
            h = torch.cat([h, cond.to(h.dtype)], dim=1)
        mu, logvar = self.to_posterior(h).chunk(2, dim=1)
        # bounded log-variance keeps exp() finite in bf16 and early training
        return mu, logvar.clamp(-30.0, 20.0)

    def _logits(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Decoder logits for latents z (and attributes)."""
        if cond is not None:
            z = torch.cat([z, cond.to(z.dtype)], dim=1)
        return self.decoder(self.from_latent(z))

    def _cond(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """Conditioning vector from a batch (none for the unconditional VAE)."""
        return None

    def forward(self, batch: dict[str, torch.Tensor], step: int = 0) -> dict[str, torch.Tensor]:
        """Training losses for a batch at this step (β from the schedule); "loss" is the total."""
        if self.config.pair_averaging != "none" and ("image_pair" in batch or self.training):
            return self._pair_forward(batch, step)
        x = batch["image"]
        cond = self._cond(batch)
        mu, logvar = self._posterior(x, cond)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self._logits(z, cond)
        # losses in fp32 whatever the autocast dtype of the networks
        return self._losses(x.float(), logits.float(), mu.float(), logvar.float(), step,
                            self._pixel_weight(batch.get("mask")))

    def _pair_forward(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """Ada-GVAE (Locatello et al. 2020): the ELBO of both faces of a pair, shared dimensions averaged."""
        if "image_pair" not in batch:
            raise ValueError("pair_averaging='ada_gvae' trains on pairs of faces: set data.pairs: true "
                             "(synthfaces) so batches carry image_pair")
        x = torch.cat([batch["image"], batch["image_pair"]])
        masks = batch.get("mask"), batch.get("mask_pair")
        weight = self._pixel_weight(None if masks[0] is None or masks[1] is None else torch.cat(masks))
        mu, logvar = self._posterior(x, None)
        mu, logvar, shared = ada_gvae_average(mu.float(), logvar.float())
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        # both halves in one batch: recon and KL means are the pair average, as in disentanglement_lib
        x, logits = x.float(), self._logits(z, None).float()
        out = self._losses(x, logits, mu, logvar, step, weight)
        out["shared_dims"] = shared.float().sum(1).mean()
        lam = float(self.config.pair_difference_weight)
        if self.training and lam > 0.0:
            diff = pair_difference_error(x, logits, self.config.recon, self.decoder_log_sigma.float(), weight)
            out["loss"] = out["loss"] + float(self.config.alpha) * lam * diff.mean()  # on the recon term's scale
            out["pair_difference"] = diff.mean().detach()
        return out

    def _pixel_weight(self, masks: torch.Tensor | None) -> torch.Tensor | None:
        """Training-time per-pixel loss weight from foreground masks (None = unweighted, and always in eval)."""
        if not self.training:
            return None
        return foreground_weight(masks, float(self.config.background_weight))

    def _losses(self, x: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                step: int, weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """α·recon (pixels weighted by weight, if given) + KL term at this step, plus scalars to log."""
        cfg = self.config
        log_sigma = self.decoder_log_sigma.float()
        recon = reconstruction_nll(x, logits, cfg.recon, log_sigma, weight).mean()
        kl_dims = kl_normal(mu, logvar)
        kl = kl_dims.sum(1).mean()
        kl_term = self.schedule.kl_term(kl, step)
        out = {
            "loss": cfg.alpha * recon + kl_term,
            "recon": recon.detach(),
            "kl": kl.detach(),
            "beta": torch.tensor(self.schedule.value(step), device=x.device),
            "kl_per_dim": (kl / kl_dims.shape[1]).detach(),
            "mse": (torch.tanh(logits.detach() / 2) - x).pow(2).mean(),
        }
        if self.training and float(cfg.perceptual_weight) > 0.0:
            feat = self._feature_loss()(torch.tanh(logits / 2), x).mean()
            out["loss"] = out["loss"] + float(cfg.perceptual_weight) * feat
            out["perceptual"] = feat.detach()
        if self.schedule.kind == "capacity":
            out["capacity"] = torch.tensor(self.schedule.capacity(step), device=x.device)
        if cfg.recon == "gaussian":
            dims = x[0].numel()
            # continuous density on [-1,1] → [0,256): add log2(128) bits per dimension
            if weight is None:  # a weighted recon is not a likelihood
                out["bits_per_dim"] = ((recon + kl) / (dims * math.log(2)) + math.log2(128)).detach()
            out["log_sigma"] = log_sigma.detach()
        return out

    def _feature_loss(self) -> FeatureLoss:
        """The frozen feature-matching term, built on first use (kept out of the state dict)."""
        if "_features" not in self.__dict__:
            net = build_feature_net(str(self.config.perceptual_net), int(self.config.image_size))
            self.__dict__["_features"] = FeatureLoss(net)  # not a submodule: bundles stay plain VAEs
        return self.__dict__["_features"]

    def loss(self, batch: dict[str, torch.Tensor], step: int = 0) -> dict[str, torch.Tensor]:
        """Same as forward (the training loop calls forward so DDP hooks run)."""
        return self(batch, step)

    def configure_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        """{"model": Adam over the trainable parameters} at lr (default: config.lr)."""
        params = [p for p in self.parameters() if p.requires_grad]
        # the fused kernel is one pass over all tensors: ~10× cheaper than the per-tensor loop on CPU
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
        return {"model": torch.optim.Adam(params, lr=float(lr if lr is not None else self.config.lr), fused=fused)}

    def encode(self, images: torch.Tensor, **kwargs) -> list[torch.Tensor]:
        """Posterior means [[N, latent_dim]] (uses the current train/eval mode)."""
        mu, _ = self._posterior(images.to(self.device), None)
        return [mu]

    def decode(self, levels: Sequence[torch.Tensor], **kwargs) -> torch.Tensor:
        """Images in [-1, 1] from [z]."""
        z = _single_level(levels).to(self.device)
        return torch.tanh(self._logits(z, None) / 2)

    def reconstruct(self, images: torch.Tensor, **kwargs) -> torch.Tensor:
        """decode(encode(images)) through the posterior means."""
        return self.decode(self.encode(images, **kwargs), **kwargs)

    def _prior(self, n: int, temperature: Temperature, generator: torch.Generator | None) -> torch.Tensor:
        """n latents from N(0, T²) drawn with the generator."""
        (temp,) = level_temperatures(temperature, 1)
        return randn((n, int(self.config.latent_dim)), generator, self.device) * temp

    @torch.no_grad()
    def sample(self, n: int, temperature: Temperature = 1.0, generator: torch.Generator | None = None,
               **kwargs) -> torch.Tensor:
        """n images in [-1, 1] from the prior; deterministic given the generator in eval mode."""
        return self.decode([self._prior(n, temperature, generator)])


def _single_level(levels: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """The one latent of a flat VAE, given as [z] (or z itself)."""
    if isinstance(levels, torch.Tensor):
        return levels
    if len(levels) != 1:
        raise ValueError(f"a flat VAE has one latent level, got {len(levels)}")
    return levels[0]


class ConditionalVAE(VAE):
    """VAE conditioned on an attribute vector: concatenated to the encoder features and to z (seed 001)."""

    kind = "cvae"
    is_conditional = True

    @register_to_config
    def __init__(self, image_size: int = 64, channels: int = 3, latent_dim: int = 64, arch: str = "conv",
                 base_channels: int = 16, max_channels: int = 256, bottom_size: int = 4, norm: str = "batch",
                 recon: str = "mse", alpha: float = 1.0, log_sigma: float = 0.0, learn_sigma: bool = True,
                 beta_schedule: str = "constant", beta: float = 1.0, warmup_steps: int = 0,
                 cycle_steps: int = 10_000, cycle_ratio: float = 0.5, gamma: float = 1000.0,
                 c_max: float = 25.0, c_steps: int = 100_000, beta_final: float | None = None,
                 beta_final_start: int = 0, beta_final_steps: int = 0, lr: float = 1e-3,
                 pair_averaging: str = "none", num_attributes: int = 40, attribute_names: list[str] | None = None,
                 background_weight: float = 1.0, perceptual_weight: float = 0.0, perceptual_net: str = "random",
                 prior: str = "standard"):
        # skip VAE.__init__: its decorator would re-register a config without the attribute fields
        LatentModel.__init__(self)
        if num_attributes < 1:
            raise ValueError("num_attributes must be >= 1")
        if attribute_names is not None and len(attribute_names) != num_attributes:
            raise ValueError(f"{len(attribute_names)} attribute_names for num_attributes={num_attributes}")
        if pair_averaging != "none":
            raise ValueError("pair_averaging (Ada-GVAE) is for the unconditional VAE; a cvae is told its attributes")
        if prior not in ("standard", "fitted"):
            raise ValueError(f"prior must be 'standard' (N(0, I)) or 'fitted' (p(z | a), "
                             f"training/fit_cvae_prior.py), got {prior!r}")
        self._build(cond_dim=num_attributes)
        if prior == "fitted":
            self.latent_prior = ConditionalGaussianPrior(num_attributes, latent_dim)

    @property
    def attribute_names(self) -> list[str]:
        """Names of the conditioning attributes (attr_0.. when none were given)."""
        names = self.config.attribute_names
        return list(names) if names else [f"attr_{i}" for i in range(self.config.num_attributes)]

    def attributes_tensor(self, attributes: torch.Tensor | Sequence[float] | None, n: int) -> torch.Tensor:
        """Validate attributes given as [A] (shared) or [n, A] and return float [n, A] on the model device."""
        if attributes is None:
            raise ValueError(f"{type(self).__name__} needs attributes of shape [{self.config.num_attributes}] "
                             f"or [n, {self.config.num_attributes}]")
        a = torch.as_tensor(attributes, dtype=torch.float32, device=self.device)
        num = int(self.config.num_attributes)
        if a.dim() == 1 and a.shape[0] == num:
            return a.expand(n, num)
        if a.dim() == 2 and a.shape == (n, num):
            return a
        raise ValueError(f"attributes must have shape [{num}] or [{n}, {num}], got {list(a.shape)}")

    def _cond(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """batch["attributes"], validated."""
        return self.attributes_tensor(batch.get("attributes"), batch["image"].shape[0])

    def encode(self, images: torch.Tensor, attributes: torch.Tensor | None = None, **kwargs) -> list[torch.Tensor]:
        """Posterior means [[N, latent_dim]] given images and their attributes."""
        mu, _ = self._posterior(images.to(self.device), self.attributes_tensor(attributes, images.shape[0]))
        return [mu]

    def decode(self, levels: Sequence[torch.Tensor], attributes: torch.Tensor | None = None,
               **kwargs) -> torch.Tensor:
        """Images in [-1, 1] from [z] and attributes ([A] or [N, A])."""
        z = _single_level(levels).to(self.device)
        return torch.tanh(self._logits(z, self.attributes_tensor(attributes, z.shape[0])) / 2)

    @torch.no_grad()
    def sample(self, n: int, temperature: Temperature = 1.0, generator: torch.Generator | None = None,
               attributes: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        """n images with the given attributes ([A] for all, or [n, A]); required.

        z comes from the fitted p(z | a) when the bundle has one (config prior="fitted"), else N(0, T²).
        """
        cond = self.attributes_tensor(attributes, n)
        if self.config.prior == "fitted":
            (temp,) = level_temperatures(temperature, 1)
            z = self.latent_prior.sample(cond, temp, generator)
        else:
            z = self._prior(n, temperature, generator)
        return self.decode([z], attributes=cond)
