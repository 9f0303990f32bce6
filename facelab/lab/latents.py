"""One latent 'code' per model kind, so traversal, morphing and arithmetic are written once.

The lab edits each model in the space where its probes and edits make sense: the posterior/prior
latents of the VAEs (every level for the HVAE), z for DCGAN, and w (after the mapping network and
truncation) for StyleGAN. A Code holds one tensor per such level, plus the CVAE's attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch

from facelab.hub import Bundle
from facelab.lab.bundles import LabError
from facelab.models.base import LevelSpec, Temperature, randn

BATCH = 64  # decode in chunks: bounds peak memory for big traversal grids


@dataclass
class Code:
    """A batch of latents in the lab's edit space: one tensor [N, *level.shape] per level."""

    levels: list[torch.Tensor]
    attributes: torch.Tensor | None = None  # CVAE conditioning [N, A]

    def __len__(self) -> int:
        return int(self.levels[0].shape[0])

    def take(self, index: Sequence[int] | torch.Tensor) -> Code:
        """The rows at index (repeats allowed), as a new Code."""
        idx = torch.as_tensor(index, dtype=torch.long)
        attrs = None if self.attributes is None else self.attributes[idx.to(self.attributes.device)]
        return Code([z[idx.to(z.device)] for z in self.levels], attrs)

    def flat(self, k: int) -> torch.Tensor:
        """Level k flattened to [N, d]."""
        return self.levels[k].reshape(len(self), -1)

    def with_flat(self, k: int, values: torch.Tensor) -> Code:
        """A copy whose level k is replaced by values [N, d] (reshaped back; other levels broadcast)."""
        n = values.shape[0]
        levels = [z if z.shape[0] == n else z.expand(n, *z.shape[1:]) for z in self.levels]
        levels[k] = values.reshape(n, *self.levels[k].shape[1:]).to(self.levels[k])
        attrs = self.attributes
        if attrs is not None and attrs.shape[0] != n:
            attrs = attrs.expand(n, -1)
        return replace(self, levels=levels, attributes=attrs)


def cat(codes: Sequence[Code]) -> Code:
    """Codes stacked along the batch."""
    attrs = [c.attributes for c in codes]
    return Code([torch.cat(zs) for zs in zip(*(c.levels for c in codes))],
                None if attrs[0] is None else torch.cat(attrs))  # type: ignore[arg-type]


def edit_levels(bundle: Bundle) -> list[LevelSpec]:
    """The levels the lab edits: w for StyleGAN, the model's own latent levels otherwise."""
    model = bundle.model
    return [model.latent_levels[1]] if model.kind == "stylegan" else list(model.latent_levels)


def default_temperatures(bundle: Bundle) -> list[float]:
    """Per-level temperatures the Generate tab starts at: the bundle's measured choice, else 1 per level.

    A bundle may record them in facelab.json as sampling.level_temperatures (the HVAE's fine levels
    draw cleaner faces below 1; BENCHMARKS.md gives the FID behind each choice).
    """
    n = len(edit_levels(bundle))
    chosen = (bundle.meta.get("sampling") or {}).get("level_temperatures")
    if isinstance(chosen, list) and len(chosen) == n and all(isinstance(t, (int, float)) for t in chosen):
        return [float(t) for t in chosen]
    return [1.0] * n


def model_level(bundle: Bundle, k: int) -> int:
    """Index in model.latent_levels (where probes are stored) of edit level k."""
    return 1 if bundle.model.kind == "stylegan" else k


def generator(seed: int) -> torch.Generator:
    """A CPU generator: the same seed gives the same latents on CPU and GPU."""
    return torch.Generator().manual_seed(int(seed))


def cvae_attributes(bundle: Bundle, n: int, seed: int, targets: dict[str, int] | None = None) -> torch.Tensor:
    """Conditioning vectors for a CVAE: synthfaces' prior given the targets when it was trained there,
    else fair coins with the targets set."""
    from facelab.data import synthfaces

    model = bundle.model
    rng = np.random.default_rng(int(seed))
    names = model.attribute_names
    if names == list(synthfaces.ATTRIBUTE_NAMES):
        try:  # the other attributes follow the data given the targets, as the CVAE saw them
            attrs = synthfaces.sample_attributes(rng, n, targets)
        except ValueError as e:
            raise LabError(str(e)) from None
    else:
        attrs = rng.integers(0, 2, size=(n, len(names))).astype(np.float32)
        for name, value in (targets or {}).items():
            attrs[:, names.index(name)] = float(value)
    return torch.as_tensor(np.asarray(attrs), dtype=torch.float32, device=model.device)


@torch.no_grad()
def random_code(bundle: Bundle, n: int, seed: int, temperature: Temperature = 1.0, psi: float = 1.0) -> Code:
    """n latents from the prior, reproducible by seed; decode() of them equals model.sample(seed)."""
    model, g = bundle.model, generator(seed)
    kind = model.kind
    if kind == "hvae":
        _, zs = model.sample(n, temperature, generator=g, return_latents=True)
        return Code(list(zs))
    if kind == "stylegan":
        z = randn((n, int(model.config.z_dim)), g, model.device)
        return Code([model.mapping(z, psi=float(psi))[:, 0]])
    if kind == "dcgan":
        return Code([model.draw_z(n, temperature, g)])
    t = float(temperature if isinstance(temperature, (int, float)) else temperature[0])
    z = randn((n, int(model.config.latent_dim)), g, model.device) * t
    return Code([z], cvae_attributes(bundle, n, seed) if kind == "cvae" else None)


@torch.no_grad()
def sample_images(bundle: Bundle, n: int, seed: int, temperature: Temperature = 1.0, psi: float = 1.0) -> torch.Tensor:
    """decode(random_code(...)) without decoding twice: the HVAE's sampling walk already makes the images."""
    if bundle.model.kind == "hvae":
        return bundle.model.sample(n, temperature, generator=generator(seed)).float().cpu()
    return decode(bundle, random_code(bundle, n, seed, temperature, psi))


@torch.no_grad()
def decode(bundle: Bundle, code: Code, batch: int = BATCH) -> torch.Tensor:
    """Images [N,3,S,S] in [-1,1] (on the CPU) from a code, in chunks of batch."""
    out = []
    for start in range(0, len(code), batch):
        part = code.take(range(start, min(len(code), start + batch)))
        out.append(_decode(bundle, part).float().cpu())
    return torch.cat(out)


def _decode(bundle: Bundle, code: Code) -> torch.Tensor:
    model = bundle.model
    levels = [z.to(model.device) for z in code.levels]
    if model.kind == "stylegan":
        return model.synthesis(levels[0]).clamp(-1, 1)
    if model.kind == "dcgan":
        return model.generate(levels[0]).clamp(-1, 1)
    if model.kind == "cvae":
        return model.decode(levels, attributes=code.attributes)
    return model.decode(levels)


def require_encoder(bundle: Bundle) -> None:
    """Raise a LabError saying what to do when the bundle cannot encode a photo (GANs)."""
    if not bundle.model.is_encoder:
        raise LabError(f"{bundle.name} is a {bundle.model.kind.upper()} with no encoder, so a photo cannot be "
                       "placed in its latent space; start from a seed, or pick a VAE/HVAE model")


@torch.no_grad()
def encode(bundle: Bundle, images: torch.Tensor) -> Code:
    """Posterior means of images [N,3,S,S] in [-1,1]; GANs have no encoder and say so."""
    require_encoder(bundle)
    model = bundle.model
    x = images.to(model.device)
    if model.kind == "cvae":
        # An unknown photo's attributes are unknown: condition on "undecided" (0.5) for every one.
        attrs = torch.full((len(x), int(model.config.num_attributes)), 0.5, device=model.device)
        return Code(list(model.encode(x, attributes=attrs)), attrs)
    return Code(list(model.encode(x)))
