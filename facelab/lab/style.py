"""StyleGAN style mixing (seed 002's style blending): rows keep their styles except a layer range from columns."""

from __future__ import annotations

from typing import Sequence

import torch

from facelab.hub import Bundle
from facelab.lab.bundles import LabError
from facelab.lab.inputs import MAX_SEED, bounded, expand_ranges, seed, whole
from facelab.lab.latents import random_code

MAX_SEEDS = 8


def parse_seeds(text: str | Sequence[int], what: str) -> list[int]:
    """Seeds from '1, 2, 3' (or '1-4') or a list of ints; 1..MAX_SEEDS of them, each a valid seed."""
    if isinstance(text, str):
        # counted from the range ends before expanding: '0-20000000' never becomes a list
        items = expand_ranges([text.replace(";", ",")], what, MAX_SEEDS)
    else:
        items = bounded(text, what, MAX_SEEDS)
    seeds = []
    for item in items:
        try:
            seeds.append(seed(item, what))
        except LabError:
            raise LabError(f"{what}: {item!r} is not a seed (use whole numbers from 0 to {MAX_SEED:,}, "
                           "like '1, 2, 3' or '1-4')") from None
    if not 1 <= len(seeds) <= MAX_SEEDS:
        raise LabError(f"{what}: give 1 to {MAX_SEEDS} seeds, got {len(seeds)}")
    return seeds


def check_stylegan(bundle: Bundle) -> None:
    """Raise a LabError unless the bundle is a StyleGAN."""
    if bundle.model.kind != "stylegan":
        raise LabError(f"style mixing needs a StyleGAN; {bundle.name} is a {bundle.model.kind}")


def layer_range(bundle: Bundle, first: int, last: int) -> range:
    """The synthesis layers [first, last] (inclusive) taken from the column styles, validated."""
    check_stylegan(bundle)
    n = int(bundle.model.num_ws)
    first, last = whole(first, "first layer", 0, n - 1), whole(last, "last layer", 0, n - 1)
    if not 0 <= first <= last < n:
        raise LabError(f"layer range must satisfy 0 ≤ first ≤ last ≤ {n - 1} for {bundle.name} "
                       f"({n} style inputs: low = coarse pose/shape, high = fine colour/texture); "
                       f"got {first}..{last}")
    return range(first, last + 1)


def style_mix(bundle: Bundle, row_seeds: list[int], col_seeds: list[int], layers: range,
              psi: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(row faces [R], column faces [C], mixes [R·C] row-major) as images in [-1, 1] on the CPU."""
    check_stylegan(bundle)
    model = bundle.model
    rows = torch.cat([random_code(bundle, 1, s, psi=psi).levels[0] for s in row_seeds])
    cols = torch.cat([random_code(bundle, 1, s, psi=psi).levels[0] for s in col_seeds])
    with torch.no_grad():
        row_img = model.synthesis(rows).clamp(-1, 1).float().cpu()
        col_img = model.synthesis(cols).clamp(-1, 1).float().cpu()
        mixed = model.style_mix(rows, cols, layers).float().cpu()
    return row_img, col_img, mixed
