"""DCGAN (Radford et al. 2015; seed 004): transposed-conv generator, strided-conv discriminator.

One LatentModel holds both networks so a single bundle saves them. The training loop calls
``forward(batch, step, phase)`` once per phase; each phase only leaves gradients on its own
network (the other one runs without grad or with detached weights), so no optimizer ever sees
stale gradients from the other phase.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Iterator

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import register_to_config
from torch import nn
from torch.func import functional_call

from facelab.models.base import LatentModel, LevelSpec, Temperature, level_temperatures, randn
from facelab.models.progressive import max_level_for

PHASES = ("generator", "discriminator")


def frozen_call(module: nn.Module, *args, **kwargs):
    """Run module with its parameters detached: gradients reach the inputs, never the weights.

    Used for D in the generator phase; unlike toggling requires_grad it is safe under DDP.
    """
    params = {name: p.detach() for name, p in module.named_parameters()}
    return functional_call(module, params, args, kwargs)


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Temporarily put module in eval mode (BatchNorm uses running stats: one z, one image)."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def check_phase(phase: str) -> None:
    """Refuse unknown phase names early, with the valid ones listed."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")


class DCGANGenerator(nn.Sequential):
    """z [N, nz, 1, 1] -> 4×4 -> ... -> image_size, channels halving per 2× upsampling."""

    def __init__(self, nz: int, ngf: int, image_size: int):
        n_up = max_level_for(image_size)
        if n_up < 1:
            raise ValueError(f"DCGAN needs image_size ≥ 8, got {image_size}")
        ch = ngf * 2 ** (n_up - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, ch, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(n_up - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, 3, 4, 2, 1, bias=False), nn.Tanh()]
        super().__init__(*layers)


D_NORMS = ("batch", "spectral")


class DCGANDiscriminator(nn.Sequential):
    """image -> strided convs (no BN on the first, as in the paper) -> one logit per image.

    norm "batch" is the paper's; "spectral" drops BatchNorm for spectral normalisation of every
    conv (Miyato et al. 2018, on this same CNN): the discriminator stays 1-Lipschitz, so it cannot
    overpower the generator and collapse it to one face — what the BatchNorm version did here.
    Apply spectral_norm after initialising the weights (see DCGAN.__init__).
    """

    def __init__(self, ndf: int, image_size: int, norm: str = "batch"):
        if norm not in D_NORMS:
            raise ValueError(f"d_norm must be one of {D_NORMS}, got {norm!r}")
        n_down = max_level_for(image_size)
        layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for _ in range(n_down - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False)]
            layers += [nn.BatchNorm2d(ch * 2)] if norm == "batch" else []
            layers += [nn.LeakyReLU(0.2, True)]
            ch *= 2
        layers += [nn.Conv2d(ch, 1, 4, 1, 0, bias=False), nn.Flatten(0)]
        super().__init__(*layers)

    def apply_spectral_norm(self) -> None:
        """Reparametrise every conv weight by its spectral norm (one power iteration per call)."""
        for module in self:
            if isinstance(module, nn.Conv2d):
                nn.utils.parametrizations.spectral_norm(module)


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's init: conv weights N(0, 0.02), BatchNorm γ ~ N(1, 0.02), β = 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class AdversarialModel(LatentModel):
    """What DCGAN and StyleGAN share: the two training phases and one Adam per network.

    Subclasses define forward(batch, step, phase), `generator`, `discriminator` and config fields
    lr, beta1, beta2 (DCGAN: β1 = 0.5, as the DCGAN paper — 0.9 oscillates, seed 004; StyleGAN:
    β = (0, 0.99), its mapping net's ×0.01 LR living in the equalized-LR scaling).
    """

    def generator_loss(self, batch: dict[str, torch.Tensor], step: int = 0) -> dict[str, torch.Tensor]:
        """forward(batch, step, "generator")."""
        return self(batch, step=step, phase="generator")

    def discriminator_loss(self, batch: dict[str, torch.Tensor], step: int = 0) -> dict[str, torch.Tensor]:
        """forward(batch, step, "discriminator")."""
        return self(batch, step=step, phase="discriminator")

    def configure_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        """Adam(lr, (beta1, beta2), eps 1e-8) for the generator and for the discriminator."""
        lr = float(lr if lr is not None else self.config.lr)
        kw = {"lr": lr, "betas": (self.config.beta1, self.config.beta2), "eps": 1e-8}
        return {"generator": torch.optim.Adam(self.generator.parameters(), **kw),
                "discriminator": torch.optim.Adam(self.discriminator.parameters(), **kw)}


class DCGAN(AdversarialModel):
    """DCGAN with the non-saturating loss; one latent level z of size nz.

    Sampling runs the generator in eval mode (BatchNorm running statistics) so an image depends
    on its own z only, never on the rest of the batch. With ema_half_life_images > 0 the model
    also keeps an exponential moving average of the generator's weights (ProGAN / StyleGAN's
    lever, half-life counted in training images; BatchNorm statistics copied from the live
    generator) and samples from it; 0 keeps the paper's DCGAN, as the bundles trained before it.
    """

    kind = "dcgan"
    is_gan = True
    # what init_weights may rebuild when a bundle lacks it (fine-tuning a bundle trained without EMA)
    derived_state = ("generator_ema.", "ema_images_seen")

    @register_to_config
    def __init__(self, image_size: int = 64, nz: int = 100, ngf: int = 64, ndf: int = 64,
                 lr: float = 2e-4, beta1: float = 0.5, beta2: float = 0.999, d_norm: str = "batch",
                 ema_half_life_images: int = 0):
        super().__init__()
        if int(ema_half_life_images) < 0:
            raise ValueError(f"ema_half_life_images must be >= 0 (0 = no EMA), got {ema_half_life_images!r}")
        self.generator = DCGANGenerator(nz, ngf, image_size)
        self.discriminator = DCGANDiscriminator(ndf, image_size, d_norm)
        self.apply(dcgan_init)
        if d_norm == "spectral":  # after the init: it normalises the initialised weights
            self.discriminator.apply_spectral_norm()
        if int(ema_half_life_images) > 0:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
            self.register_buffer("ema_images_seen", torch.tensor(0, dtype=torch.int64))
        self.images_offset = 0  # images of earlier stages (init_from): see continue_stage

    @property
    def has_ema(self) -> bool:
        """Whether this DCGAN keeps (and samples from) a weight-averaged generator."""
        return "generator_ema" in self._modules

    def reset_derived_state(self) -> None:
        """Start the EMA generator from the live generator's weights (after loading a bundle without one)."""
        if self.has_ema:
            self.generator_ema.load_state_dict(self.generator.state_dict())
            self.ema_images_seen.zero_()

    @property
    def latent_levels(self) -> list[LevelSpec]:
        """One level: the generator input z ~ N(0, I) of size nz."""
        return [LevelSpec("z", (int(self.config.nz),))]

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images [N,3,S,S] in [-1, 1] from given latents z [N, nz] (eval-mode BatchNorm; the EMA generator if kept)."""
        net = self.generator_ema if self.has_ema else self.generator
        with eval_mode(net):
            return net(z.to(self.device, self.dtype)[:, :, None, None])

    def draw_z(self, n: int, temperature: Temperature = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """n latents z ~ N(0, temperature² I), reproducible given a torch.Generator."""
        (t,) = level_temperatures(temperature, 1)
        return randn((n, self.config.nz), generator, self.device) * t

    @torch.no_grad()
    def sample(self, n: int, temperature: Temperature = 1.0,
               generator: torch.Generator | None = None, **kwargs) -> torch.Tensor:
        """n images in [-1, 1]; temperature scales z."""
        return self.generate(self.draw_z(n, temperature, generator))

    @torch.no_grad()
    def sample_with_latents(self, n: int, temperature: Temperature = 1.0,
                            generator: torch.Generator | None = None
                            ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """n images and their latents [z] (one tensor per latent level), for probes."""
        z = self.draw_z(n, temperature, generator)
        return self.generate(z), [z]

    def forward(self, batch: dict[str, torch.Tensor], step: int = 0,
                phase: str = "generator") -> dict[str, torch.Tensor]:
        """Loss of one phase on a batch of real images; "loss" is what that phase minimises."""
        check_phase(phase)
        real = batch["image"]
        z = torch.randn(real.shape[0], self.config.nz, 1, 1, device=real.device)
        if phase == "generator":
            logits = frozen_call(self.discriminator, self.generator(z)).float()
            loss = F.softplus(-logits).mean()  # non-saturating: maximise log D(G(z))
            return {"loss": loss, "g_loss": loss.detach(), "d_fake": logits.detach().mean()}
        with torch.no_grad():
            fake = self.generator(z)
        real_logits = self.discriminator(real.to(fake.dtype)).float()
        fake_logits = self.discriminator(fake).float()
        loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        return {"loss": loss, "d_loss": loss.detach(), "d_real": real_logits.detach().mean(),
                "d_fake": fake_logits.detach().mean()}


    def continue_stage(self) -> None:
        """After loading a bundle to train on (init_from): count this run's images on from the EMA's,
        so the average keeps updating from the first step instead of waiting for the old count."""
        self.images_offset = int(self.ema_images_seen) if self.has_ema else 0

    @torch.no_grad()
    def after_step(self, step: int, images_seen: int) -> dict[str, float]:
        """EMA update by the images since the last one (half-life in images); nothing without EMA."""
        if not self.has_ema:
            return {}
        images_seen = int(images_seen) + self.images_offset  # this run's images on top of earlier stages'
        delta = images_seen - int(self.ema_images_seen)
        if delta <= 0:  # a repeated call for the same images must not average twice
            return {"ema_beta": 1.0}
        beta = 0.5 ** (delta / float(self.config.ema_half_life_images))
        for p_ema, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            p_ema.lerp_(p.detach().to(p_ema.dtype), 1.0 - beta)
        for b_ema, b in zip(self.generator_ema.buffers(), self.generator.buffers()):
            b_ema.copy_(b)  # BatchNorm running statistics follow the live generator
        self.ema_images_seen.fill_(int(images_seen))
        return {"ema_beta": beta}
