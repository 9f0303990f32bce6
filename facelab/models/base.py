"""The LatentModel interface every facelab model implements, and LevelSpec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from diffusers import ConfigMixin, ModelMixin


@dataclass(frozen=True)
class LevelSpec:
    """One latent level: a name and the shape of one sample's latent at that level."""

    name: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        """Number of scalars in one sample's latent at this level."""
        n = 1
        for s in self.shape:
            n *= int(s)
        return n


Temperature = float | Sequence[float]


def level_temperatures(temperature: Temperature, n_levels: int) -> list[float]:
    """Expand a scalar or per-level temperature into one float per level."""
    if isinstance(temperature, (int, float)):
        return [float(temperature)] * n_levels
    temps = [float(t) for t in temperature]
    if len(temps) != n_levels:
        raise ValueError(f"expected {n_levels} temperatures (one per latent level), got {len(temps)}")
    return temps


def randn(shape: Sequence[int], generator: torch.Generator | None, device: torch.device,
          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise drawn on the generator's device, then moved: same seed, same draw."""
    gen_device = generator.device if generator is not None else device
    return torch.randn(tuple(shape), generator=generator, device=gen_device, dtype=dtype).to(device)


class LatentModel(ModelMixin, ConfigMixin):
    """Base of every facelab model: diffusers ModelMixin/ConfigMixin plus the latent contract.

    Subclasses register their typed __init__ arguments with ``@register_to_config`` so that
    ``save_pretrained``/``from_pretrained`` round-trip config.json + safetensors.
    Images are float tensors [N, 3, H, W] in [-1, 1].
    """

    config_name = "config.json"
    #: registry name (set by subclasses); "vae", "cvae", "hvae", "dcgan", "stylegan"
    kind: str = ""
    #: True for models with encode()/decode() (the VAEs)
    is_encoder: bool = False
    #: True for adversarial models (generator_loss/discriminator_loss instead of loss)
    is_gan: bool = False
    #: True when sample() needs attributes (conditional models)
    is_conditional: bool = False

    @property
    def latent_levels(self) -> list[LevelSpec]:
        """The latent levels, coarse to fine."""
        raise NotImplementedError

    @property
    def image_size(self) -> int:
        """Side of the square images the model makes."""
        return int(self.config.image_size)

    def sample(self, n: int, temperature: Temperature = 1.0,
               generator: torch.Generator | None = None, **kwargs) -> torch.Tensor:
        """Draw n images in [-1, 1]."""
        raise NotImplementedError

    def loss(self, batch: dict[str, torch.Tensor], step: int = 0) -> dict[str, torch.Tensor]:
        """Training losses for one batch; key "loss" is the total to minimise."""
        raise NotImplementedError

    def encode(self, images: torch.Tensor, **kwargs) -> list[torch.Tensor]:
        """Posterior means, one tensor [N, *level.shape] per latent level."""
        raise NotImplementedError(f"{type(self).__name__} has no encoder")

    def decode(self, levels: list[torch.Tensor], **kwargs) -> torch.Tensor:
        """Images from latents (one tensor per level)."""
        raise NotImplementedError(f"{type(self).__name__} has no decoder")

    def reconstruct(self, images: torch.Tensor, **kwargs) -> torch.Tensor:
        """Decode the posterior means of images (encoding models only)."""
        return self.decode(self.encode(images, **kwargs), **kwargs)
