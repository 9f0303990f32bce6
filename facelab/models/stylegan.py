"""StyleGAN (seed 002): mapping net, styles, noise, progressive growing, mixing, truncation, EMA, R1.

One LatentModel holds the generator, the discriminator, the EMA generator and the progressive
state (``level``, ``alpha``, ``images_seen`` buffers), so one bundle restores all of it.

Latent levels (both are probe spaces): ``z`` [z_dim], the mapping input, and ``w`` [w_dim], the
mapped style shared by every layer. A different w per layer (seed 002's style blending) goes
through ``sample(ws=[n, num_ws, w_dim])``.

Output size: during growth the generator works at the current resolution 4·2^level; sample()
and synthesis() nearest-upsample that to image_size so downstream shapes never change.
The training forward() keeps the current resolution (D trains at it; reals are downsampled).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import register_to_config

from facelab.models.base import LevelSpec, Temperature, level_temperatures, randn
from facelab.models.dcgan import AdversarialModel, check_phase, frozen_call
from facelab.models.progressive import (ProgressiveSchedule, blend_reals, level_resolution,
                                        max_level_for, resize_to)
from facelab.models.stylegan_layers import ProgressiveDiscriminator, StyleGenerator, truncate


class StyleGAN(AdversarialModel):
    """Progressively grown StyleGAN-2-style generator with a ProGAN-style discriminator.

    Sampling uses the EMA generator unless ``use_ema=False``. Temperature: z is normalised
    before mapping, so scaling z would do nothing; a temperature t (scalar, or one per level
    [t_z, t_w]) instead multiplies the truncation ψ (w = w_avg + ψ·t·(w − w_avg)).
    """

    kind = "stylegan"
    is_gan = True

    @register_to_config
    def __init__(self, image_size: int = 64, z_dim: int = 256, w_dim: int = 256,
                 mapping_layers: int = 8, mapping_lr_mul: float = 0.01, channel_base: int = 2048,
                 channel_max: int = 256, mbstd_group: int = 4, progressive: bool = True,
                 fade_images: int = 150_000, stable_images: int = 150_000,
                 style_mixing_prob: float = 0.9, r1_gamma: float = 1.0, r1_interval: int = 16,
                 ema_half_life_images: int = 10_000, ema_rampup: float | None = 0.05,
                 w_avg_beta: float = 0.995, lr: float = 2e-3, beta1: float = 0.0, beta2: float = 0.99):
        super().__init__()
        self.generator = StyleGenerator(z_dim, w_dim, mapping_layers, mapping_lr_mul, w_avg_beta,
                                        image_size, channel_base, channel_max)
        self.discriminator = ProgressiveDiscriminator(image_size, channel_base, channel_max, mbstd_group)
        # EMA weights live in the bundle as a frozen submodule (diffusers' EMAModel keeps them outside)
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        max_level = max_level_for(image_size)
        self.register_buffer("level", torch.tensor(0 if progressive else max_level, dtype=torch.int64))
        self.register_buffer("alpha", torch.tensor(1.0))
        self.register_buffer("images_seen", torch.tensor(0, dtype=torch.int64))
        self.images_offset = 0  # images of earlier stages (init_from): see continue_stage
        # read by training/speed.py: R1 differentiates through D's input gradient (double backward)
        self.compile_unsupported = None if float(r1_gamma) == 0 else (
            "train.compile: StyleGAN's R1 penalty needs double backward, which torch.compile's aot_autograd "
            "does not support; training uncompiled (set model.params.r1_gamma=0 to compile)")

    # ---- latent contract ---------------------------------------------------------------
    @property
    def latent_levels(self) -> list[LevelSpec]:
        """z (mapping input) and w (mapped style, one per image); both are probe spaces."""
        return [LevelSpec("z", (int(self.config.z_dim),)), LevelSpec("w", (int(self.config.w_dim),))]

    @property
    def num_ws(self) -> int:
        """Number of per-layer w vectors the synthesis network takes (2·log2(size) − 2)."""
        return self.generator.synthesis.num_ws

    @property
    def max_level(self) -> int:
        """Top progressive level: log2(image_size) − 2."""
        return max_level_for(self.config.image_size)

    @property
    def resolution(self) -> int:
        """Current training resolution 4·2^level."""
        return level_resolution(int(self.level))

    # ---- progressive schedule ------------------------------------------------------------
    @property
    def schedule(self) -> ProgressiveSchedule:
        """Images per fade/stable phase from the config."""
        return ProgressiveSchedule(self.max_level, self.config.fade_images, self.config.stable_images)

    def progress_for(self, images_seen: int) -> tuple[int, float]:
        """(level, α) the schedule prescribes after images_seen images ((max_level, 1) if not progressive)."""
        if not self.config.progressive:
            return self.max_level, 1.0
        return self.schedule.progress(images_seen)

    def set_progress(self, level: int, alpha: float) -> None:
        """Set the current level and fade-in α (α is 1 at level 0: nothing to fade from)."""
        if not 0 <= level <= self.max_level or not 0.0 <= alpha <= 1.0:
            raise ValueError(f"need 0 ≤ level ≤ {self.max_level} and 0 ≤ α ≤ 1, got {level}, {alpha}")
        self.level.fill_(int(level))
        self.alpha.fill_(1.0 if level == 0 else float(alpha))

    def progress(self) -> tuple[int, float]:
        """The current (level, α) as Python numbers."""
        return int(self.level), float(self.alpha)

    # ---- public generation API -------------------------------------------------------
    def _net(self, use_ema: bool) -> StyleGenerator:
        return self.generator_ema if use_ema else self.generator

    def mapping(self, z: torch.Tensor, psi: float = 1.0, truncation_cutoff: int | None = None,
                use_ema: bool = True) -> torch.Tensor:
        """z [N, z_dim] -> ws [N, num_ws, w_dim], truncated towards w_avg by ψ (differentiable)."""
        return self._net(use_ema).mapping(z.to(self.device), self.num_ws, psi, truncation_cutoff)

    def expand_ws(self, ws: torch.Tensor) -> torch.Tensor:
        """[N, w_dim] -> [N, num_ws, w_dim]; [N, num_ws, w_dim] passes through."""
        ws = ws.to(self.device, torch.float32)
        if ws.dim() == 2:
            ws = ws.unsqueeze(1).repeat(1, self.num_ws, 1)
        if ws.dim() != 3 or ws.shape[1:] != (self.num_ws, self.config.w_dim):
            raise ValueError(f"ws must be [N, {self.config.w_dim}] or [N, {self.num_ws}, "
                             f"{self.config.w_dim}], got {tuple(ws.shape)}")
        return ws

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const", generator: torch.Generator | None = None,
                  use_ema: bool = True) -> torch.Tensor:
        """ws -> images [N,3,S,S] at the current level/α, nearest-upsampled to image_size (differentiable)."""
        level, alpha = self.progress()
        images = self._net(use_ema).synthesis(self.expand_ws(ws), level, alpha, noise_mode, generator)
        return resize_to(images, self.config.image_size)

    def _psi(self, psi: float, temperature: Temperature) -> float:
        for t in level_temperatures(temperature, 2):
            psi *= t
        return psi

    @torch.no_grad()
    def sample_with_latents(self, n: int, temperature: Temperature = 1.0,
                            generator: torch.Generator | None = None, psi: float = 1.0,
                            ws: torch.Tensor | None = None, truncation_cutoff: int | None = None,
                            noise_mode: str = "const", use_ema: bool = True
                            ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """n images in [-1, 1] and latents [z, w] (w: first layer's, truncated; z is NaN if ws were given)."""
        psi = self._psi(psi, temperature)
        if ws is None:
            z = randn((n, self.config.z_dim), generator, self.device)
            ws = self.mapping(z, psi, truncation_cutoff, use_ema)
        else:
            ws = self.expand_ws(ws)
            if ws.shape[0] != n:
                raise ValueError(f"asked for {n} samples but ws holds {ws.shape[0]}")
            z = torch.full((n, self.config.z_dim), float("nan"), device=self.device)  # unknown
            ws = truncate(ws, self._net(use_ema).mapping.w_avg, psi, truncation_cutoff)
        images = self.synthesis(ws, noise_mode, generator, use_ema).clamp(-1, 1)
        return images, [z, ws[:, 0]]

    @torch.no_grad()
    def sample(self, n: int, temperature: Temperature = 1.0, generator: torch.Generator | None = None,
               psi: float = 1.0, ws: torch.Tensor | None = None, truncation_cutoff: int | None = None,
               noise_mode: str = "const", use_ema: bool = True, **kwargs) -> torch.Tensor:
        """n images in [-1, 1]; ws [n, w_dim] or [n, num_ws, w_dim] replaces z sampling (ψ still applies)."""
        return self.sample_with_latents(n, temperature, generator, psi, ws, truncation_cutoff,
                                        noise_mode, use_ema)[0]

    @torch.no_grad()
    def style_mix(self, row_ws: torch.Tensor, col_ws: torch.Tensor, layers: range,
                  noise_mode: str = "const", use_ema: bool = True) -> torch.Tensor:
        """Grid [R·C, 3, S, S], row-major: image (r, c) = row_ws[r] with `layers` taken from col_ws[c]."""
        rows, cols = self.expand_ws(row_ws), self.expand_ws(col_ws)
        r, c = rows.shape[0], cols.shape[0]
        ws = rows.unsqueeze(1).repeat(1, c, 1, 1)  # [R, C, num_ws, w_dim]
        idx = torch.as_tensor(list(layers), dtype=torch.long, device=ws.device)
        ws[:, :, idx] = cols[:, idx].unsqueeze(0).expand(r, -1, -1, -1)
        return self.synthesis(ws.flatten(0, 1), noise_mode, None, use_ema).clamp(-1, 1)

    # ---- training ----------------------------------------------------------------------
    def _training_ws(self, n: int, level: int, device: torch.device, update_w_avg: bool) -> torch.Tensor:
        """Mapped ws for a training batch, with style mixing at a random layer cutoff."""
        mapping = self.generator.mapping
        ws = mapping(torch.randn(n, self.config.z_dim, device=device), self.num_ws, update_w_avg=update_w_avg)
        active = 2 * level + 2  # mixing past the layers in use would be a silent no-op
        if self.config.style_mixing_prob > 0 and float(torch.rand(())) < self.config.style_mixing_prob:
            cutoff = int(torch.randint(1, active, ()))
            ws2 = mapping(torch.randn(n, self.config.z_dim, device=device), self.num_ws)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return ws

    def _r1(self, reals: torch.Tensor, level: int, alpha: float) -> torch.Tensor:
        """R1 = E‖∇_x D(x)‖² on reals, in fp32: the double backward is too noisy in bf16."""
        with torch.autocast(device_type=reals.device.type, enabled=False):
            reals = reals.detach().float().requires_grad_(True)
            logits = self.discriminator(reals, level, alpha)
            (grad,) = torch.autograd.grad(logits.sum(), reals, create_graph=True)
        return grad.square().sum(dim=(1, 2, 3)).mean()

    def forward(self, batch: dict[str, torch.Tensor], step: int = 0,
                phase: str = "generator") -> dict[str, torch.Tensor]:
        """Non-saturating loss of one phase (+ lazy R1 on D every r1_interval steps); "loss" is minimised."""
        check_phase(phase)
        level, alpha = self.progress()
        real = batch["image"]
        n, dev = real.shape[0], real.device
        logs = {"alpha": torch.tensor(alpha, device=dev),
                "resolution": torch.tensor(float(level_resolution(level)), device=dev)}
        if phase == "generator":
            fake = self.generator.synthesis(self._training_ws(n, level, dev, True), level, alpha)
            logits = frozen_call(self.discriminator, fake, level, alpha)
            loss = F.softplus(-logits).mean()
            return {"loss": loss, "g_loss": loss.detach(), "d_fake": logits.detach().mean(), **logs}
        with torch.no_grad():
            fake = self.generator.synthesis(self._training_ws(n, level, dev, False), level, alpha)
        reals = blend_reals(real.float(), level, alpha)
        real_logits = self.discriminator(reals, level, alpha)
        fake_logits = self.discriminator(fake, level, alpha)
        loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        out = {"d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean(), **logs}
        k, gamma = self.config.r1_interval, self.config.r1_gamma
        if gamma > 0 and k > 0 and step % k == 0:
            r1 = self._r1(reals, level, alpha)
            out["r1"] = r1.detach()
            loss = loss + r1 * (gamma / 2 * k)  # ×k: lazy regularisation keeps the average strength
        out["d_loss"] = loss.detach()
        return {"loss": loss, **out}


    @torch.no_grad()
    def update_ema(self, beta: float) -> None:
        """generator_ema ← β·generator_ema + (1 − β)·generator; buffers (w_avg, const noise) copied."""
        for p_ema, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            p_ema.lerp_(p.detach().to(p_ema.dtype), 1.0 - beta)
        for b_ema, b in zip(self.generator_ema.buffers(), self.generator.buffers()):
            b_ema.copy_(b)

    def continue_stage(self) -> None:
        """After loading a bundle to train on (init_from): this run's images count on from the bundle's,
        so the progressive schedule does not restart at 4 px and the EMA does not wait for the run
        to pass the bundle's count."""
        self.images_offset = int(self.images_seen)

    def after_step(self, step: int, images_seen: int) -> dict[str, float]:
        """EMA update (half-life in images, StyleGAN-2 ramp-up) and progressive (level, α) update."""
        images_seen = int(images_seen) + self.images_offset  # this run's images on top of earlier stages'
        delta = images_seen - int(self.images_seen)
        beta = 1.0
        if delta > 0:  # a second call for the same images (one per optimizer) must not double-update
            half_life = float(self.config.ema_half_life_images)
            if self.config.ema_rampup is not None:
                half_life = min(half_life, images_seen * self.config.ema_rampup)
            beta = 0.5 ** (delta / max(half_life, 1e-8))
            self.update_ema(beta)
            self.images_seen.fill_(int(images_seen))
        self.set_progress(*self.progress_for(images_seen))
        level, alpha = self.progress()
        return {"ema_beta": beta, "level": float(level), "alpha": alpha,
                "resolution": float(level_resolution(level))}
