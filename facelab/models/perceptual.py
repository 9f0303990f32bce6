"""Feature-matching ("perceptual") reconstruction term for the VAEs (DFC-VAE, Hou et al. 2017).

Pixel MSE gives a 2-pixel change of mouth curve or a colour shift on ten lip pixels almost no weight
next to the rest of a 64 px face, so a VAE leaves such factors out of its code (BENCHMARKS.md, weak
supervision). Matching the decoder's output to the input in the feature maps of a CNN weighs them
by how much they change those features instead. The CNN is frozen and only used in training:

- ``"random"``: the attribute classifier's architecture with fixed random weights (seed 0) — no
  labels involved, so the model stays unsupervised (random CNN features are a known usable
  perceptual space: Ustyuzhaninov et al. 2017);
- a path to an attribute classifier folder (training/train_classifier.py): features trained on the
  dataset's labels. That is supervision by those labels, and results must say so.

The feature net is not a submodule: bundles keep the plain VAE's weights and load without it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from facelab.models.classifier import AttributeClassifier, load_attribute_classifier

RANDOM_NET = "random"


def build_feature_net(source: str, image_size: int) -> AttributeClassifier:
    """The frozen feature CNN named by source: "random" or an attribute classifier folder."""
    if source == RANDOM_NET:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # the same random features in every run and process
            net = AttributeClassifier(attribute_names=["none"], image_size=image_size)
    else:
        if not Path(source).is_dir():
            raise FileNotFoundError(f"perceptual_net={source!r} is neither 'random' nor an attribute classifier "
                                    "folder; train one with `python training/train_classifier.py` or use 'random'")
        net = load_attribute_classifier(source)
    net.eval().requires_grad_(False)
    return net


class FeatureLoss(nn.Module):
    """Per-sample Σ over the net's stages of the mean squared feature difference, × image size.

    Scaling each stage's mean by C·H·W of the image puts one unit of weight on the scale of the
    summed pixel MSE, so perceptual_weight reads as "feature term relative to pixel term".
    """

    def __init__(self, net: AttributeClassifier):
        super().__init__()
        self.net = net

    def forward(self, recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """[N] feature distance of recon (gradients flow) from target (constant), images in [-1, 1]."""
        self.net.to(recon.device)
        with torch.no_grad():
            wanted = self.net.stage_features(target)
        got = self.net.stage_features(recon)
        per_stage = [(g - w).pow(2).flatten(1).mean(1) for g, w in zip(got, wanted)]
        return torch.stack(per_stage, 1).sum(1) * target[0].numel()
