"""Procedural cartoon faces with ground-truth factors, masks and CelebA-named attributes.

Like dSprites or 3dshapes, but faces: every image is a pure function of a discrete factor
vector (FACTOR_NAMES, FACTOR_SIZES) and a nuisance seed, rendered in vectorised batches at
any size. SynthFaces(seed) is a random-access dataset: index i always gives the same face,
in any process, with nothing stored on disk.
"""

from __future__ import annotations

import operator
from typing import Sequence

import numpy as np
import torch

from facelab.data.background import check_variant, composite
from facelab.data.synthfaces_background import SLOTS as BG_SLOTS
from facelab.data.synthfaces_background import render_background
from facelab.data.synthfaces_draw import Canvas
from facelab.data.synthfaces_factors import (
    ATTRIBUTE_NAMES, BACKGROUND_FACTORS, FACTOR_INDEX, FACTOR_NAMES, FACTOR_PRIORS, FACTOR_SIZES,
    FACTOR_VALUE_NAMES, attributes_from_factors, check_factors, check_prior, factors_from_uniforms, hash_keys,
    hash_uniforms, sample_attributes, sample_factors,
)
from facelab.data.synthfaces_features import (
    draw_age, draw_beard, draw_eyes, draw_glasses, draw_makeup, draw_moustache, draw_mouth, draw_nose,
)
from facelab.data.synthfaces_head import (
    draw_bald, draw_body, draw_ears, draw_face, draw_hair_back, draw_hair_front, draw_neck, shade,
)
from facelab.data.synthfaces_params import HEAD_Y, NUISANCE_SLOTS, face_params
from facelab.imaging import from_uint8

__all__ = [
    "ATTRIBUTE_NAMES", "BACKGROUND_FACTORS", "FACTOR_NAMES", "FACTOR_PRIORS", "FACTOR_SIZES", "FACTOR_VALUE_NAMES",
    "SynthFaces", "attributes_from_factors", "render", "sample_attributes", "sample_factors",
]

# Back to front, each over the ones before; a layer with a condition draws only where it holds.
LAYERS = (
    (draw_body, None), (draw_hair_back, lambda p: (p.style == 1) | (p.style == 2)),
    (draw_neck, None), (draw_ears, None),
    (draw_face, None), (draw_age, lambda p: p.age > 0), (draw_nose, None),
    (draw_makeup, lambda p: p.lipstick == 1), (draw_eyes, None), (draw_beard, lambda p: p.beard >= 2),
    (draw_mouth, None), (draw_moustache, lambda p: (p.beard == 1) | (p.beard == 3)),
    (draw_glasses, lambda p: p.glasses > 0), (draw_hair_front, lambda p: p.style != 3),
    (draw_bald, lambda p: p.style == 3),
)
MIN_SIZE = 16
_PIXELS_PER_CHUNK = 96 * 64 * 64  # keeps the working arrays cache-sized
_NUISANCE_SALT = np.uint64(0xA5A5A5A5)


def _check_seeds(seeds: np.ndarray | None, n: int) -> np.ndarray:
    if seeds is None:
        return np.zeros(n, np.uint64)
    arr = np.asarray(seeds)
    if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"seeds must be {n} integers (one per factor row), got {arr.dtype} {arr.shape}")
    return arr.astype(np.uint64)


def _render_chunk(factors: np.ndarray, size: int, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Render one cache-sized batch: foreground layers, lighting, background, then uint8."""
    n = len(factors)
    nuisance = hash_uniforms(seeds, NUISANCE_SLOTS + BG_SLOTS)
    p = face_params(factors, nuisance[:, :NUISANCE_SLOTS])
    canvas = Canvas(n, size, (p.hx, np.full(n, HEAD_Y, np.float32)), p.roll)
    for layer, where in LAYERS:
        idx = None if where is None else np.nonzero(where(p))[0]
        if idx is not None and len(idx) == 0:
            continue
        if idx is not None and len(idx) == n:
            idx = None
        target = canvas.take(idx)
        layer(target, p if idx is None else p.take(idx))
        target.commit()
    light = shade(canvas, p)
    light *= 255.0
    behind = 1.0 - canvas.alpha
    behind *= 255.0
    fg = factors[:, [FACTOR_INDEX[name] for name in BACKGROUND_FACTORS]]
    back = render_background(fg[:, 0], fg[:, 1], nuisance[:, NUISANCE_SLOTS:], size)
    rgb = np.empty((n, size, size, 3), np.uint8)
    for k, (plane, bg) in enumerate(zip(canvas.rgb, back)):
        plane *= light
        out = bg * behind
        out += plane
        out += 0.5  # round to nearest on the cast below
        np.minimum(out, 255.0, out=out)
        rgb[..., k] = out
    return rgb, np.clip(canvas.alpha, 0.0, 1.0)


def render(factors: np.ndarray, size: int = 64, seeds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Render factor rows [n,F] -> (uint8 images [n,H,W,3], float32 foreground masks [n,H,W]).

    seeds [n] (default all 0) drive nuisance details: clothes, eye colour, small colour jitter,
    background angles, blob positions and noise texture.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise ValueError(f"size must be an int >= {MIN_SIZE}, got {size!r}")
    size = int(size)
    factors = check_factors(factors)
    seeds = _check_seeds(seeds, len(factors))
    chunk = max(1, _PIXELS_PER_CHUNK // (size * size))
    images = np.empty((len(factors), size, size, 3), np.uint8)
    masks = np.empty((len(factors), size, size), np.float32)
    # Chunks of one roll need smaller drawing windows; each image is independent, so order is free.
    order = np.argsort(factors[:, FACTOR_INDEX["roll"]], kind="stable")
    for s in range(0, len(factors), chunk):
        idx = order[s:s + chunk]
        images[idx], masks[idx] = _render_chunk(factors[idx], size, seeds[idx])
    return images, masks


def _unbatch(batch: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Batched tensors -> one dict per item."""
    n = len(next(iter(batch.values())))
    return [{name: value[i] for name, value in batch.items()} for i in range(n)]


class SynthFaces(torch.utils.data.Dataset):
    """Random-access synthetic faces: item i is a pure function of (seed, i); nothing on disk.

    Items follow the FaceDataset contract: image float32 [3,H,W] in [-1,1], attributes float32 [A],
    mask float32 [1,H,W] (ground-truth foreground: face, hair, neck, shoulders), factors int64 [F].
    prior: "correlated" (CelebA-like: lipstick only on women, grey hair with age, ...) or "uniform"
    (independent uniform factors, as disentanglement benchmarks train and the metrics sample).
    """

    attribute_names: list[str] = ATTRIBUTE_NAMES
    factor_names: list[str] = FACTOR_NAMES
    factor_sizes: list[int] = FACTOR_SIZES
    background_factor_names: list[str] = BACKGROUND_FACTORS

    def __init__(self, size: int = 64, length: int = 50_000, seed: int = 0, background: str = "original",
                 prior: str = "correlated"):
        if isinstance(size, bool) or not isinstance(size, int) or size < MIN_SIZE:
            raise ValueError(f"size must be an int >= {MIN_SIZE}, got {size!r}")
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"length must be an int >= 0, got {length!r}")
        self.size, self.length, self.seed = size, length, int(seed)
        self.background, self.prior = check_variant(background), check_prior(prior)
        # Copies, so a caller editing a dataset's lists cannot change the module's tables.
        self.attribute_names, self.factor_names = list(ATTRIBUTE_NAMES), list(FACTOR_NAMES)
        self.factor_sizes, self.background_factor_names = list(FACTOR_SIZES), list(BACKGROUND_FACTORS)

    def __len__(self) -> int:
        """Number of items."""
        return self.length

    def _indices(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
        if isinstance(indices, torch.Tensor):
            indices = indices.tolist()
        idx = np.asarray([operator.index(i) for i in np.asarray(indices).reshape(-1).tolist()], np.int64)
        bad = (idx < -self.length) | (idx >= self.length)
        if bad.any():
            raise IndexError(f"index {int(idx[bad][0])} out of range for SynthFaces of length {self.length}")
        return np.where(idx < 0, idx + self.length, idx)

    def factors(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
        """Factors [n,F] int64 of those indices, without rendering."""
        return self._keyed_factors(self._indices(indices))[1]

    def _keyed_factors(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hash keys, factors [n,F]) of checked indices: the keys drive the factors and, salted, the nuisance."""
        keys = hash_keys(self.seed, idx)
        return keys, factors_from_uniforms(hash_uniforms(keys, len(FACTOR_NAMES)), prior=self.prior)

    def _tensors(self, factors: np.ndarray, keys: np.ndarray) -> dict[str, torch.Tensor]:
        """Render factor rows with these keys' nuisance into batched tensors (image, attributes, mask, factors)."""
        images, masks = render(factors, self.size, keys ^ _NUISANCE_SALT)
        if self.background != "original":
            images = np.stack([composite(im, m, self.background) for im, m in zip(images, masks)])
        return {"image": from_uint8(images), "attributes": torch.from_numpy(attributes_from_factors(factors)),
                "mask": torch.from_numpy(masks).unsqueeze(1), "factors": torch.from_numpy(factors)}

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        """Items for a list of indices, rendered as one vectorised batch (torch DataLoader's fast path)."""
        idx = self._indices(indices)
        if len(idx) == 0:
            return []
        keys, factors = self._keyed_factors(idx)
        return _unbatch(self._tensors(factors, keys))

    def __getitem__(self, i: int) -> dict:
        """One item: {"image", "attributes", "mask", "factors"} (see the class docstring)."""
        return self.__getitems__([operator.index(i)])[0]
