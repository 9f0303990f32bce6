"""Training data: the dataset from a DataConfig, a seeded per-epoch sampler and resumable batches.

The global batch (train.batch_size) is split across processes (accelerate ``split_batches``):
every rank draws the same seeded permutation for an epoch and takes its slice of each global
batch, so the data order depends only on (seed, epoch), not on the number of processes, and a
resumed run skips exactly the batches it already trained on (``skip_first_batches``).
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from facelab.config import ConfigError, DataConfig
from facelab.data.build import build_dataset


class IndexedDataset(Dataset):
    """Wraps a FaceDataset so every item also carries its dataset index under "index"."""

    def __init__(self, base: Dataset):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getattr__(self, name: str) -> Any:
        # attribute_names, factor_names, ... of the wrapped dataset
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {**self.base[index], "index": torch.tensor(index, dtype=torch.int64)}

    def __getitems__(self, indices: list[int]) -> list[dict[str, torch.Tensor]]:
        # keep the wrapped dataset's fast batched fetch (synthfaces renders a batch at once)
        fetch = getattr(self.base, "__getitems__", None)
        items = fetch(indices) if fetch else [self.base[i] for i in indices]
        return [{**item, "index": torch.tensor(i, dtype=torch.int64)} for i, item in zip(indices, items)]


class EpochSampler(Sampler[int]):
    """A shuffled permutation drawn from (seed, epoch) alone: same order on every rank and on resume."""

    def __init__(self, length: int, seed: int):
        self.length, self.seed, self.epoch = int(length), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of this epoch."""
        self.epoch = int(epoch)

    def permutation(self, epoch: int | None = None) -> torch.Tensor:
        """The index order of an epoch (the current one by default)."""
        # a private generator: shuffling never consumes (or depends on) the global RNG
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + (self.epoch if epoch is None else epoch))
        return torch.randperm(self.length, generator=g)

    def __iter__(self) -> Iterator[int]:
        return iter(self.permutation().tolist())

    def __len__(self) -> int:
        return self.length


def make_dataset(cfg: DataConfig) -> IndexedDataset:
    """The training dataset a DataConfig names, wrapped with indices."""
    kw: dict[str, Any] = {}
    if cfg.name == "synthfaces":
        kw.update(length=cfg.length, seed=cfg.seed, prior=cfg.factor_prior)
        if cfg.pairs:
            kw.update(pairs=True, changes=cfg.pair_changes)
    elif cfg.pairs:
        raise ConfigError(f"data.pairs needs synthfaces (pairs that share known factors), not {cfg.name!r}")
    elif cfg.factor_prior != "correlated":
        raise ConfigError(f"data.factor_prior is a synthfaces option (it draws the factors), not for {cfg.name!r}")
    if cfg.attributes is not None:
        kw["attributes"] = cfg.attributes
    if cfg.name == "hub":
        kw["image_column"] = cfg.image_column
    try:
        ds = build_dataset(cfg.name, root=cfg.root, size=cfg.image_size, split=cfg.split,
                           background=cfg.background, **kw)
    except (TypeError, ValueError) as err:  # e.g. data.attributes for a source without that option
        raise ConfigError(f"data ({cfg.name}): {err}") from err
    return IndexedDataset(ds)


def make_dataloader(dataset: Dataset, batch_size: int, seed: int, num_workers: int = 0
                    ) -> tuple[DataLoader, EpochSampler]:
    """DataLoader of full global batches (drop_last) over a seeded EpochSampler."""
    if len(dataset) < batch_size:
        raise ValueError(f"dataset has {len(dataset)} items, fewer than one batch of {batch_size}")
    sampler = EpochSampler(len(dataset), seed)
    # its own generator: creating an iterator draws a worker base seed, which would otherwise come
    # from the global RNG at a different moment in a resumed run than in an uninterrupted one
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True,
                        num_workers=num_workers, generator=torch.Generator().manual_seed(seed))
    return loader, sampler


def epoch_batches(accelerator: Accelerator, loader: DataLoader, sampler: EpochSampler,
                  start_step: int) -> Iterator[dict[str, torch.Tensor]]:
    """This rank's batches from global step start_step on, forever, epoch after epoch."""
    steps_per_epoch = len(loader)
    epoch, skip = divmod(start_step, steps_per_epoch)
    while True:
        # DataLoaderShard re-applies its own epoch counter to the sampler when iterated: keep both equal
        loader.set_epoch(epoch)
        sampler.set_epoch(epoch)
        yield from accelerator.skip_first_batches(loader, skip) if skip else loader
        epoch, skip = epoch + 1, 0


def fixed_batch(dataset: Dataset, n: int) -> dict[str, torch.Tensor]:
    """The first n items as one batch: what sample/reconstruction grids show at every step."""
    n = min(n, len(dataset))
    fetch = getattr(dataset, "__getitems__", None)
    items = fetch(list(range(n))) if fetch else [dataset[i] for i in range(n)]
    return default_collate(items)
