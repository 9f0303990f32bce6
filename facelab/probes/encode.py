"""Latents per level for probes: posterior means of a dataset (encoding models) or sampled GAN latents.

Encoding models (VAE, cVAE, HVAE): the first n items of a dataset are encoded in eval mode without
gradients; each level's posterior means are flattened to [N, d_k] float32. Labels are the dataset's
attributes, plus synthfaces' factors and FFHQ's ages when the dataset has them.

GANs (DCGAN, StyleGAN): there is no encoder, so n latents are drawn (z; z and w for StyleGAN), their
images generated, and an image attribute classifier (facelab.metrics.attributes.AttributeClassifier,
or anything with predict(images) -> probabilities [N, A] and attribute_names) labels them. VAEs and
the HVAE can take this route too (generate_latents), to probe p(attribute | decode(z)) under the prior.

Results are cached as safetensors (arrays) + a JSON string in the file's metadata, keyed by a hash of
(model weights, data source, n, classifier weights): changing any weight gives a new key, so a stale
cache is never read. The default cache lives outside the bundle (FACELAB_CACHE, else
~/.cache/facelab/latents): push_bundle uploads the whole bundle folder, and latents of 20,000 faces
would add tens of MB to the Hub repo.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file
from torch.utils.data import DataLoader, Subset

from facelab.models.base import randn

CACHE_VERSION = 1
ENV_CACHE = "FACELAB_CACHE"


@dataclass
class Encoded:
    """Latents per level [N, d_k] float32 with their labels (and synthfaces factors / FFHQ ages)."""

    levels: list[np.ndarray]
    level_names: list[str]
    labels: np.ndarray
    attribute_names: list[str]
    source: str  # "dataset" (posterior means) or "generated" (sampled latents, classifier labels)
    factors: np.ndarray | None = None
    factor_names: list[str] | None = None
    ages: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of encoded samples."""
        return int(len(self.labels))


# ---------------------------------------------------------------- fingerprints and cache


def fingerprint(module: Any) -> str:
    """SHA-256 of a module's state dict (names, dtypes, shapes, bytes): changes whenever a weight does."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # bytes via a uint8 view: numpy has no bfloat16, and the view copies nothing
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def dataset_identity(dataset: Any) -> dict[str, Any]:
    """What makes a dataset's items what they are: class, size, split, background, root, seed, length."""
    base = getattr(dataset, "base", dataset)  # training's IndexedDataset wraps the real one
    ident: dict[str, Any] = {"class": type(base).__name__, "length": len(base)}
    for attr in ("size", "split", "background", "root", "seed", "crop", "source"):
        value = getattr(base, attr, None)
        if value is not None:
            ident[attr] = str(value) if isinstance(value, Path) else value
    if not {"root", "seed", "source"} & set(ident):
        # no identity beyond the class: fall back to the labels themselves so two folders never collide
        labels = getattr(base, "labels", None)
        if labels is not None:
            ident["labels_sha"] = hashlib.sha256(np.ascontiguousarray(labels).tobytes()).hexdigest()
    return json.loads(json.dumps(ident, default=str))


def default_cache_dir() -> Path:
    """$FACELAB_CACHE, else $XDG_CACHE_HOME/facelab/latents, else ~/.cache/facelab/latents."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "facelab" / "latents"


def cache_key(parts: dict[str, Any]) -> str:
    """Hex digest naming one cache entry (parts must be JSON-able)."""
    text = json.dumps({"version": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def save_encoded(path: str | Path, enc: Encoded) -> Path:
    """Write an Encoded to one safetensors file (arrays + JSON metadata), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"level/{k}": np.ascontiguousarray(x) for k, x in enumerate(enc.levels)}
    arrays["labels"] = np.ascontiguousarray(enc.labels, dtype=np.float32)
    if enc.factors is not None:
        arrays["factors"] = np.ascontiguousarray(enc.factors, dtype=np.int64)
    if enc.ages is not None:
        arrays["ages"] = np.ascontiguousarray(enc.ages, dtype=np.float32)
    meta = {"level_names": enc.level_names, "attribute_names": enc.attribute_names, "source": enc.source,
            "factor_names": enc.factor_names, "info": enc.info}
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    save_file(arrays, str(tmp), metadata={"facelab": json.dumps(meta)})
    os.replace(tmp, path)
    return path


def load_encoded(path: str | Path) -> Encoded:
    """Read a file written by save_encoded."""
    with safe_open(str(path), framework="np") as f:
        meta = json.loads(f.metadata()["facelab"])
        arrays = {k: f.get_tensor(k) for k in f.keys()}
    levels = [arrays[f"level/{k}"] for k in range(len(meta["level_names"]))]
    return Encoded(levels=levels, level_names=meta["level_names"], labels=arrays["labels"],
                   attribute_names=meta["attribute_names"], source=meta["source"],
                   factors=arrays.get("factors"), factor_names=meta.get("factor_names"),
                   ages=arrays.get("ages"), info=meta.get("info") or {})


def _cached(cache_dir: str | Path | None, use_cache: bool, parts: dict[str, Any],
            compute: Any) -> Encoded:
    """Read the cache entry for parts, or compute, store and return it."""
    key = cache_key(parts)
    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"latents-{key}.safetensors"
    if use_cache and path.is_file():
        try:
            enc = load_encoded(path)
            enc.info = {**enc.info, "cache": str(path), "from_cache": True}
            return enc
        except Exception:  # a corrupt or foreign file: recompute and overwrite rather than fail the run
            pass
    enc = compute()
    enc.info = {**enc.info, "key": key, **parts}
    if use_cache:
        save_encoded(path, enc)
        enc.info["cache"] = str(path)
    enc.info["from_cache"] = False
    return enc


@contextlib.contextmanager
def inference(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no gradients for the block; the previous train/eval mode comes back after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


# ---------------------------------------------------------------- encoding a dataset


def _encode_batches(model: Any, dataset: Any, n: int, batch_size: int) -> dict[str, list[np.ndarray]]:
    """Posterior means per level, attributes, factors and ages of the first n items, batch by batch."""
    loader = DataLoader(Subset(dataset, range(n)), batch_size=batch_size, shuffle=False, num_workers=0)
    out: dict[str, list[Any]] = {"levels": [], "labels": [], "factors": []}
    with inference(model):
        for batch in loader:
            kw = {"attributes": batch["attributes"]} if getattr(model, "is_conditional", False) else {}
            zs = model.encode(batch["image"].to(model.device), **kw)
            out["levels"].append([z.float().reshape(len(z), -1).cpu().numpy() for z in zs])
            out["labels"].append(batch["attributes"].numpy().astype(np.float32))
            if "factors" in batch:
                out["factors"].append(batch["factors"].numpy())
    return out


def encode_dataset(model: Any, dataset: Any, n: int | None = None, batch_size: int = 128,
                   cache_dir: str | Path | None = None, use_cache: bool = True) -> Encoded:
    """Posterior means per level of the first n dataset items (all if n is None), flattened, cached."""
    if not getattr(model, "is_encoder", False):
        raise ValueError(f"{type(model).__name__} has no encoder: use generate_latents() with an image "
                         "attribute classifier for GANs")
    n = len(dataset) if n is None else min(int(n), len(dataset))
    if n < 1:
        raise ValueError("nothing to encode: the dataset is empty or n < 1")
    base = getattr(dataset, "base", dataset)
    parts = {"weights": fingerprint(model), "kind": model.kind, "mode": "posterior_mean",
             "dataset": dataset_identity(dataset), "n": n}

    def compute() -> Encoded:
        raw = _encode_batches(model, dataset, n, batch_size)
        levels = [np.concatenate(col) for col in zip(*raw["levels"])]
        ages = getattr(base, "ages", None)
        return Encoded(levels=levels, level_names=[s.name for s in model.latent_levels],
                       labels=np.concatenate(raw["labels"]), attribute_names=list(base.attribute_names),
                       source="dataset", factors=np.concatenate(raw["factors"]) if raw["factors"] else None,
                       factor_names=list(getattr(base, "factor_names", None) or []) or None,
                       ages=None if ages is None else np.asarray(ages, np.float32)[:n])

    return _cached(cache_dir, use_cache, parts, compute)


# ---------------------------------------------------------------- sampling a GAN


def _classifier_id(classifier: Any) -> str:
    """A fingerprint of the labeller: its weights when it has any, else its class and names."""
    module = getattr(classifier, "model", classifier)
    if hasattr(module, "state_dict"):
        return fingerprint(module)
    return f"{type(classifier).__name__}:{list(classifier.attribute_names)}"


def sample_with_latents(model: Any, n: int, generator: torch.Generator | None) -> tuple[torch.Tensor, list]:
    """n prior samples and their latents per level, for any model kind (GANs, VAE, HVAE)."""
    if hasattr(model, "sample_with_latents"):
        return model.sample_with_latents(n, generator=generator)
    if model.kind == "hvae":
        return model.sample(n, generator=generator, return_latents=True)
    if model.kind == "vae":
        z = randn((n, int(model.config.latent_dim)), generator, model.device)
        return model.decode([z]), [z]
    raise ValueError(f"{type(model).__name__} cannot return the latents of its samples")


def generate_latents(model: Any, n: int, classifier: Any, batch_size: int = 128, seed: int = 0,
                     cache_dir: str | Path | None = None, use_cache: bool = True) -> Encoded:
    """n prior latents per level (z; z and w for StyleGAN) labelled by an image attribute classifier.

    The only route for GANs. For VAEs it is the alternative to posterior means that estimates what
    conditional sampling needs, p(attribute | decode(z)) under the prior, where posterior means only
    cover the aggregate posterior (prior samples can fall in its holes).
    """
    if classifier is None:
        raise ValueError(f"sampled latents of {type(model).__name__} are labelled by an image attribute "
                         "classifier (facelab.metrics.attributes); pass one")
    parts = {"weights": fingerprint(model), "kind": model.kind, "mode": "generated", "n": int(n),
             "seed": int(seed), "classifier": _classifier_id(classifier)}

    def compute() -> Encoded:
        gen = torch.Generator().manual_seed(int(seed))
        levels: list[list[np.ndarray]] = []
        probs: list[np.ndarray] = []
        with inference(model):
            for start in range(0, int(n), batch_size):
                images, zs = sample_with_latents(model, min(batch_size, int(n) - start), gen)
                levels.append([z.float().reshape(len(z), -1).cpu().numpy() for z in zs])
                p = classifier.predict(images)
                probs.append(p.detach().cpu().numpy() if isinstance(p, torch.Tensor) else np.asarray(p))
        return Encoded(levels=[np.concatenate(col) for col in zip(*levels)],
                       level_names=[s.name for s in model.latent_levels],
                       labels=(np.concatenate(probs) > 0.5).astype(np.float32),
                       attribute_names=list(classifier.attribute_names), source="generated")

    return _cached(cache_dir, use_cache, parts, compute)
