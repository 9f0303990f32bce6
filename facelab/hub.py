"""Bundles: a model + facelab.json + probes + model card + samples, in a local folder or a Hub repo.

Layout (the same locally and on the Hub):
    config.json, diffusion_pytorch_model.safetensors   the model (diffusers ModelMixin/ConfigMixin)
    facelab.json                                       kind, dataset, background, image size, attributes, metrics
    probes/probes.safetensors + probes/probes.json     latent probes (arrays + JSON)
    README.md                                          model card
    samples.png                                        a sample grid
Only safetensors weights are ever loaded. A bundle is untrusted input: before any of its files is read,
facelab.bundle_files refuses links out of its folder, pickles (recognised by their bytes) and files of
unknown formats; a weights file missing or adding tensors, or holding NaN/inf, refuses it too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from facelab import __version__
from facelab.bundle_files import (BundleError, check_files, check_weights, contained_file, hub_blobs,
                                  read_json_object, real_roots)

META_FILE = "facelab.json"
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
HUB_PATTERNS = ["*.json", "*.safetensors", "*.md", "*.png", "probes/*"]


@dataclass
class Bundle:
    """A loaded bundle: the model in eval mode, its metadata, and where it came from."""

    model: Any
    meta: dict[str, Any]
    path: Path
    source: str
    extras: dict[str, Any] = field(default_factory=dict)
    roots: tuple[Path, ...] = ()  # real folders its files may live in (empty: its own folder)

    @property
    def name(self) -> str:
        """Display name: meta["name"] or the folder name."""
        return str(self.meta.get("name") or self.path.name)

    @property
    def attribute_names(self) -> list[str]:
        """Names of the dataset attributes the bundle was trained/probed with."""
        return list(self.meta.get("attribute_names") or [])

    def file(self, *parts: str) -> Path | None:
        """The bundle's file at parts when it exists and really lies inside the bundle (links followed), else None."""
        return contained_file(self.path.joinpath(*parts), self.roots or real_roots(self.path))


def save_bundle(model: Any, folder: str | Path, meta: dict[str, Any],
                samples: Image.Image | None = None, card: str | None = None) -> Path:
    """Write model weights + config, facelab.json, optional samples.png and model card to folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    full = {"kind": model.kind, "image_size": model.image_size, "facelab_version": __version__, **meta}
    _write_json(folder / META_FILE, full)
    if samples is not None:
        samples.save(folder / "samples.png")
    if card is not None:
        (folder / "README.md").write_text(card)
    return folder


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (temp file + rename): a crash never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_json_default))
    os.replace(tmp, path)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def update_meta(folder: str | Path, **updates: Any) -> dict[str, Any]:
    """Merge updates into a bundle's facelab.json (e.g. metrics) and return the new metadata."""
    path = Path(folder) / META_FILE
    meta = json.loads(path.read_text()) if path.is_file() else {}
    meta.update(updates)
    _write_json(path, meta)
    return meta


def parse_source(source: str) -> tuple[str, str | None]:
    """Split 'user/repo@revision' into (repo_id, revision); local paths have no revision."""
    if "@" in source and not Path(source).exists():
        repo, rev = source.rsplit("@", 1)
        return repo, rev or None
    return source, None


def resolve(source: str, cache_dir: str | Path | None = None) -> Path:
    """A local bundle folder for source: the folder itself, or a Hub snapshot download."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    repo_id, revision = parse_source(source)
    if path.exists() or repo_id.count("/") != 1 or repo_id.startswith((".", "/")):
        raise BundleError(f"bundle {source!r}: no such folder, and not a Hub repo id (user/name[@revision])")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_PATTERNS,
                                      cache_dir=cache_dir))
    except LocalEntryNotFoundError as err:
        raise BundleError(
            f"bundle {source!r} is not in the local Hub cache and cannot be downloaded "
            f"(offline: HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '0')}, or no network). "
            "Connect and unset HF_HUB_OFFLINE, or pass a local bundle folder.") from err
    except RepositoryNotFoundError as err:
        raise BundleError(f"bundle {source!r}: Hub repo not found (or private: log in with `hf auth login`)") from err
    except (HfHubHTTPError, OSError) as err:
        raise BundleError(f"bundle {source!r}: download failed: {err}") from err


def read_meta(folder: Path) -> dict[str, Any]:
    """facelab.json of a bundle folder, with a clear error when missing or broken."""
    path = folder / META_FILE
    if not path.is_file():
        raise BundleError(f"bundle {folder}: missing {META_FILE} (not a facelab bundle)")
    try:
        return read_json_object(path, META_FILE)
    except json.JSONDecodeError as err:
        raise BundleError(f"bundle {folder}: {META_FILE} is not valid JSON ({err})") from err
    except (ValueError, UnicodeDecodeError) as err:
        raise BundleError(f"bundle {folder}: {err}") from err


def load_bundle(source: str, device: str | torch.device = "cpu", cache_dir: str | Path | None = None,
                with_probes: bool = True) -> Bundle:
    """Load a bundle from a local folder or 'user/repo[@revision]' on the Hub, model in eval mode."""
    from facelab.models import MODELS

    folder = resolve(source, cache_dir)
    # a Hub snapshot's files are links into the cache's blobs/ (written by huggingface_hub itself)
    roots = real_roots(folder, [] if Path(source).expanduser().is_dir() else hub_blobs(folder))
    check_files(folder, source, roots)
    meta = read_meta(folder)
    kind = meta.get("kind")
    if not isinstance(kind, str) or kind not in MODELS:
        raise BundleError(f"bundle {source!r}: unknown model kind {kind!r}; known: {', '.join(MODELS)}")
    if not (folder / WEIGHTS_FILE).is_file():
        raise BundleError(f"bundle {source!r}: missing weights file {WEIGHTS_FILE}")
    try:
        model = MODELS[kind].from_pretrained(folder, use_safetensors=True, low_cpu_mem_usage=False)
    except Exception as err:  # diffusers raises many types for shape/key mismatches
        raise BundleError(f"bundle {source!r}: weights do not load into {MODELS[kind].__name__}: {err}") from err
    check_weights(model, folder / WEIGHTS_FILE, source)
    # weights may be stored in fp16 (halve_weights: shipped GANs); facelab computes in fp32
    model.to(device).float().eval()
    bundle = Bundle(model=model, meta=meta, path=folder, source=source, roots=roots)
    if with_probes and (folder / "probes" / "probes.json").is_file():
        from facelab.probes.io import ProbesError, load_probes

        try:
            bundle.extras["probes"] = load_probes(folder / "probes")
        except (ProbesError, OSError) as err:
            raise BundleError(f"bundle {source!r}: {err}") from err
    return bundle


def halve_weights(folder: str | Path) -> int:
    """Re-store a bundle's fp32 weights as fp16 (half the bytes; loading casts back to fp32); returns bytes saved.

    For shipped bundles under the assets/ size budget: fp16 keeps ~3 significant digits, far below
    what changes a sample visibly, and fine-tuning from such a bundle starts from the rounded weights.
    """
    import torch
    from safetensors.torch import load_file, save_file

    path = Path(folder) / WEIGHTS_FILE
    before = path.stat().st_size
    tensors = {k: (v.half() if v.dtype == torch.float32 else v) for k, v in load_file(str(path)).items()}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    tmp.replace(path)
    update_meta(Path(folder), weights_dtype="float16")
    return before - path.stat().st_size


def push_bundle(folder: str | Path, repo_id: str, private: bool = False, revision: str | None = None,
                token: str | None = None) -> str:
    """Upload a bundle folder to the Hub; returns the commit URL. Clear errors offline/unauthenticated."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    folder = Path(folder)
    check_files(folder)
    read_meta(folder)
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, revision=revision,
                                 commit_message="facelab bundle")
    except OfflineModeIsEnabled as err:
        raise BundleError(f"cannot push to {repo_id}: HF_HUB_OFFLINE is set. Unset it and retry; "
                          f"the bundle is kept at {folder}") from err
    except HfHubHTTPError as err:
        raise BundleError(f"cannot push to {repo_id}: {err}. Log in with `hf auth login` (or set HF_TOKEN) "
                          f"and retry; the bundle is kept at {folder}") from err
    except OSError as err:  # connection errors
        raise BundleError(f"cannot push to {repo_id}: no connection to the Hub ({err}); "
                          f"the bundle is kept at {folder}") from err
    return str(getattr(info, "commit_url", info))
