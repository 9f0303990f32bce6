"""train.ema_decay: an exponential moving average of the weights for the VAE family (HVAE first).

VD-VAE and NVAE sample from an EMA of the weights (decay 0.9998–0.9999): the prior of a hierarchical
VAE trained with a constant learning rate jitters from step to step, and the average draws cleaner
images. diffusers' ``EMAModel`` keeps the shadow weights; its warm-up (decay capped at
(1+t)/(10+t)) lets the average follow the fast early changes. Shadow weights are stored in every
checkpoint as ``ema.safetensors`` (covered by the manifest) so ``--resume`` continues the same
average; the release bundle and the sample grids use the averaged weights. GANs keep their own
EMA generator (StyleGAN: ``model.params.ema_half_life_images``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import torch
from diffusers.training_utils import EMAModel
from safetensors import safe_open
from safetensors.torch import save_file

EMA_FILE = "ema.safetensors"


class WeightAverage:
    """An EMA of a model's parameters, saved with checkpoints and swapped in to sample or release."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.model = model
        self.decay = float(decay)
        self.ema = EMAModel(model.parameters(), decay=self.decay)

    def update(self) -> None:
        """One averaging step after an optimiser step."""
        self.ema.step(self.model.parameters())

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The averaged weights in the model for the duration; the trained weights restored after."""
        self.ema.store(self.model.parameters())
        self.ema.copy_to(self.model.parameters())
        try:
            yield
        finally:
            self.ema.restore(self.model.parameters())

    def save(self, folder: str | Path) -> Path:
        """Shadow weights and step count as folder/ema.safetensors."""
        tensors = {f"p{i}": p.detach().contiguous().cpu() for i, p in enumerate(self.ema.shadow_params)}
        path = Path(folder) / EMA_FILE
        save_file(tensors, str(path), metadata={"decay": str(self.decay),
                                                "optimization_step": str(self.ema.optimization_step)})
        return path

    def load(self, folder: str | Path) -> bool:
        """Restore from folder/ema.safetensors; False (average restarts from the current weights) if absent."""
        path = Path(folder) / EMA_FILE
        if not path.is_file():
            self.ema = EMAModel(self.model.parameters(), decay=self.decay)
            return False
        shadow = self.ema.shadow_params
        with safe_open(str(path), framework="pt") as f:  # tensors and step count in one read
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            step = int((f.metadata() or {}).get("optimization_step", 0))
        if len(tensors) != len(shadow) or any(tensors[f"p{i}"].shape != s.shape for i, s in enumerate(shadow)):
            raise ValueError(f"{path} does not match this model's parameters")
        for i, s in enumerate(shadow):
            s.copy_(tensors[f"p{i}"].to(s.device, s.dtype))
        self.ema.optimization_step = step
        return True


def averaged(average: WeightAverage | None) -> contextlib.AbstractContextManager:
    """average.swapped_in() when training keeps an EMA, else a no-op context."""
    return average.swapped_in() if average is not None else contextlib.nullcontext()
