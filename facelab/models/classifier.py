"""The image attribute classifier's network (seed 001's role): a small multi-label CNN, and its safe loader.

Seed 001 fine-tuned an ImageNet Inception-v3 on CelebA's 40 labels; here a ~1 M-parameter strided
CNN trained from scratch does the same job fast on CPU (64 px input, 4 stride-2 stages, global
average pool). It is a model like the others, so it lives here: the VAEs' perceptual loss uses its
feature maps, and facelab.metrics (training, accuracy, FD-attr) builds on it — models never import
metrics or the hub.

GroupNorm rather than BatchNorm: predictions of one image never depend on the rest of its batch,
and a model trained a few hundred steps has no running statistics to mis-estimate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from facelab.bundle_files import check_files, check_weights

CLASSIFIER_KIND = "attribute_classifier"


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    """Halve the resolution, then one more 3×3 conv at the new width (both GroupNorm + SiLU)."""
    groups = max(1, min(8, c_out // 8))
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GroupNorm(groups, c_out), nn.SiLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.GroupNorm(groups, c_out), nn.SiLU(),
    )


class AttributeClassifier(ModelMixin, ConfigMixin):
    """Multi-label CNN: images [N,3,H,W] in [-1,1] -> one logit per binary attribute."""

    config_name = "config.json"

    @register_to_config
    def __init__(self, attribute_names: list[str] | None = None, image_size: int = 64,
                 widths: tuple[int, ...] | list[int] = (32, 64, 128, 256), dropout: float = 0.1):
        super().__init__()
        names = list(attribute_names or [])
        if not names:
            raise ValueError("AttributeClassifier needs at least one attribute name")
        chans = [3, *[int(w) for w in widths]]
        self.body = nn.Sequential(*[_stage(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(chans[-1], len(names))

    @property
    def attribute_names(self) -> list[str]:
        """The attributes, in output order."""
        return list(self.config.attribute_names)

    @property
    def feature_dim(self) -> int:
        """Size of the penultimate (pooled) feature vector."""
        return int(self.head.in_features)

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Move to the model's device and resize to image_size (the size it was trained at)."""
        x = images.to(self.device, torch.float32)
        size = int(self.config.image_size)
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > size)
        return x

    def stage_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Each stage's feature map, first to last (with gradients; the perceptual loss matches them)."""
        out, h = [], self._prepare(images)
        for stage in self.body:
            h = stage(h)
            out.append(h)
        return out

    def _pooled(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(self._prepare(images)).mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits [N, A]."""
        return self.head(self.drop(self._pooled(images)))

    @torch.no_grad()
    def _batched(self, images: torch.Tensor, fn: Any, batch_size: int) -> torch.Tensor:
        was_training = self.training
        self.eval()
        try:
            return torch.cat([fn(images[i:i + batch_size]).float().cpu()
                              for i in range(0, len(images), batch_size)])
        finally:
            self.train(was_training)

    def predict(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Probabilities [N, A] (eval mode, no grad, batched)."""
        return self._batched(images, lambda x: torch.sigmoid(self(x)), batch_size)

    def features(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Penultimate pooled features [N, feature_dim] (for the FD-attr Fréchet distance)."""
        return self._batched(images, self._pooled, batch_size)


def load_attribute_classifier(path: str | Path, device: str | torch.device = "cpu") -> AttributeClassifier:
    """Load a classifier folder (config.json + safetensors only; pickles are refused), in eval mode."""
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not an attribute classifier folder (no config.json); "
                                "train one with `python training/train_classifier.py`")
    check_files(folder)
    model = AttributeClassifier.from_pretrained(folder, use_safetensors=True, low_cpu_mem_usage=False)
    check_weights(model, folder / "diffusion_pytorch_model.safetensors", str(folder))
    return model.to(device).eval()
