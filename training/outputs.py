"""What a run writes besides checkpoints: fixed-seed sample grids and the release bundle.

Only the main process calls these. Sampling runs under a forked RNG so writing a grid never
changes the training noise that follows (a resumed run must replay the same random draws).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import torch
from PIL import Image

from facelab.cards import model_card, training_stage
from facelab.config import RunConfig, to_dict
from facelab.hub import save_bundle
from facelab.imaging import grid, save_grid
from training.checkpoints import remove_dir


@contextlib.contextmanager
def sampling(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode, no grad, and the global RNG state restored afterwards."""
    was_training = model.training
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        model.eval()
        try:
            yield
        finally:
            model.train(was_training)


def sample_images(model: Any, n: int, seed: int, fixed: dict[str, torch.Tensor]) -> torch.Tensor:
    """n samples from a fixed seed (conditional models use the fixed batch's attributes)."""
    generator = torch.Generator().manual_seed(int(seed))
    kwargs = {}
    if getattr(model, "is_conditional", False):
        kwargs["attributes"] = fixed["attributes"][:n].to(model.device)
        n = kwargs["attributes"].shape[0]
    return model.sample(n, generator=generator, **kwargs).float().cpu()


def reconstructions(model: Any, fixed: dict[str, torch.Tensor]) -> torch.Tensor:
    """Originals and their reconstructions, interleaved row by row."""
    images = fixed["image"].to(model.device)
    kwargs = {"attributes": fixed["attributes"].to(model.device)} if getattr(model, "is_conditional", False) else {}
    if hasattr(model, "reconstruct"):
        rec = model.reconstruct(images, **kwargs)
    else:  # posterior means through the decoder (the HVAE has no reconstruct())
        rec = model.decode(model.encode(images, **kwargs), **kwargs)
    rec = rec.float().cpu()
    cols = _ncols(images.shape[0])
    rows = []
    for start in range(0, images.shape[0], cols):
        rows += [images[start:start + cols].float().cpu(), rec[start:start + cols]]
    return torch.cat(rows)


def _ncols(n: int) -> int:
    return max(1, math.ceil(math.sqrt(n)))


def write_samples(model: Any, cfg: RunConfig, fixed: dict[str, torch.Tensor], step: int) -> list[Path]:
    """samples/step_<step>.png (+ recon_<step>.png for encoder models) under the output dir."""
    folder = Path(cfg.train.output_dir) / "samples"
    n = cfg.train.num_samples
    with sampling(model):
        paths = [save_grid(sample_images(model, n, cfg.train.seed, fixed), folder / f"step_{step:07d}.png",
                           nrow=_ncols(n))]
        if getattr(model, "is_encoder", False):
            paths.append(save_grid(reconstructions(model, fixed), folder / f"recon_{step:07d}.png",
                                   nrow=_ncols(fixed["image"].shape[0])))
    return paths


def bundle_meta(cfg: RunConfig, dataset: Any, final_losses: dict[str, float],
                training: dict[str, Any]) -> dict[str, Any]:
    """facelab.json content: data (and its bad files by reason), training summary, final losses, run config."""
    meta = {
        "dataset": cfg.data.name,
        "background": cfg.data.background,
        "image_size": cfg.data.image_size,
        "attribute_names": list(getattr(dataset, "attribute_names", None) or []),
        "factor_names": list(getattr(dataset, "factor_names", None) or []) or None,
        "training": training,
        "final_losses": final_losses,
        "run_config": to_dict(cfg),
        "name": Path(cfg.train.output_dir).name,
    }
    files = getattr(dataset, "file_report", None)  # real datasets only: synthfaces has no files
    if files is not None:
        meta["data_files"] = files()  # cards.py renders it as rows
    return meta


def lineage(start: dict[str, Any] | None, source: str | None) -> list[dict[str, Any]]:
    """The earlier training stages of a fine-tuned bundle, oldest first: the start bundle's own, then it.

    Each stage keeps what reproduces it (its run config and training summary), so a bundle fine-tuned
    in several steps still says every step's recipe, not only the last one's.
    """
    if start is None:
        return []
    return [*start.get("lineage", []), training_stage(start, source)]


def write_bundle(model: Any, cfg: RunConfig, dataset: Any, fixed: dict[str, torch.Tensor],
                 final_losses: dict[str, float], training: dict[str, Any],
                 history: list[dict[str, Any]] | None = None) -> Path:
    """The release bundle at output_dir/bundle: weights, facelab.json, model card, samples.png."""
    meta = bundle_meta(cfg, dataset, final_losses, training)
    meta["kind"] = model.kind
    if history:
        meta["lineage"] = history
    with sampling(model):
        n = cfg.train.num_samples
        samples: Image.Image = grid(sample_images(model, n, cfg.train.seed, fixed), nrow=_ncols(n))
    folder = Path(cfg.train.output_dir) / "bundle"
    tmp = folder.with_name(".tmp-bundle")
    shutil.rmtree(tmp, ignore_errors=True)
    save_bundle(model, tmp, meta, samples=samples, card=model_card(meta))
    remove_dir(folder)  # a crash from here on leaves the complete .tmp-bundle, never half a bundle
    os.replace(tmp, folder)
    return folder
