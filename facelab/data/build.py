"""Every dataset by name: the one place that knows all the loaders (they depend on datasets.py, not it on them)."""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from facelab.data.celeba import CelebA
from facelab.data.datasets import SPLITS, ImageFolder
from facelab.data.ffhq import FFHQ
from facelab.data.hub_dataset import HubDataset
from facelab.data.splits import SPLIT_NAMES
from facelab.data.synthfaces import SynthFaces
from facelab.data.synthfaces_pairs import SynthFacePairs

DATASET_NAMES = ("synthfaces", "celeba", "ffhq", "folder", "hub")
SYNTH_SPLIT_SEED_STRIDE = 1_000_003  # synthfaces "splits" are disjoint seeds: seed + k * stride


def build_dataset(name: str, root: str | None = None, size: int = 64, split: str = "train",
                  background: str = "original", **kw: Any) -> Dataset:
    """One FaceDataset by name: "synthfaces" | "celeba" | "ffhq" | "folder" | "hub" (root = Hub id or path)."""
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}")
    if split not in SPLITS and name != "hub":
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if name == "synthfaces":
        k = SPLIT_NAMES.index(split) if split in SPLIT_NAMES else 0
        seed = int(kw.pop("seed", 0)) + k * SYNTH_SPLIT_SEED_STRIDE
        cls = SynthFacePairs if kw.pop("pairs", False) else SynthFaces  # pairs: weak supervision (Ada-GVAE)
        return cls(size=size, seed=seed, background=background, **kw)
    if name == "hub":
        if background != "original":
            raise ValueError("background variants need a local dataset root: save the Hub dataset as an image "
                             "folder, run training/prepare_data.py on it and use name='folder'")
        source = kw.pop("repo_id", root)
        if source is None:
            raise ValueError("build_dataset('hub') needs root=<Hub id or local path>")
        return HubDataset(source, split=split, size=size, **kw)
    if root is None:
        raise ValueError(f"build_dataset({name!r}) needs root=<dataset folder>")
    if name == "celeba":
        return CelebA(root, size=size, split=split, background=background, **kw)
    if name == "ffhq":
        return FFHQ(root, size=size, split=split, background=background, **kw)
    return ImageFolder(root, size=size, split=split, background=background, **kw)
