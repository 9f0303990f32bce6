"""Background variants of face images (seed 002): original | grey | blur, from a foreground mask.

Masks come from ground truth (synthfaces items carry "mask") or from rembg for real photos.
rembg is imported lazily: its first import JIT-compiles pymatting with numba (~45 s cold),
and `import rembg` without onnxruntime calls sys.exit(1).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import Any, Mapping

import numpy as np
from PIL import Image, ImageFilter

VARIANTS = ("original", "grey", "blur")
GREY = 127  # flat mid-grey, the seed-002 "removed background" colour

# Named rembg models facelab accepts, with their file names (rembg stores <home>/models/<name>/<file>).
REMBG_MODELS = {
    "u2net": "u2net.onnx",
    "u2netp": "u2netp.onnx",
    "isnet-general-use": "isnet-general-use.onnx",
    "u2net_human_seg": "u2net_human_seg.onnx",
    "silueta": "silueta.onnx",
}
CUSTOM_MODEL = "u2net_custom"  # any U2-Net-like ONNX file given by path
_RELEASES = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"

_SESSIONS: dict[tuple[str, str], Any] = {}
_SESSIONS_LOCK = threading.Lock()  # the app may ask for a session from several request threads


class RembgModelMissingError(FileNotFoundError):
    """A named rembg model file is not on disk and could not be downloaded."""


def check_variant(variant: str) -> str:
    """Return variant if it is one of VARIANTS, else raise a ValueError naming the choices."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown background variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return variant


def composite(image: np.ndarray, mask: np.ndarray, variant: str,
              blur_radius: float | None = None) -> np.ndarray:
    """Put the foreground (mask=1) of a uint8 [H,W,3] image over the variant's background.

    mask is float [H,W] in [0,1] (soft edges kept). "blur" uses a Gaussian of radius
    blur_radius (default: 1/16 of the image side, strong enough to erase background detail).
    """
    check_variant(variant)
    if variant == "original":
        return image
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H,W,3], got shape {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image {image.shape[:2]}")
    m = np.clip(mask.astype(np.float32), 0.0, 1.0)[..., None]
    if variant == "grey":
        back = np.full_like(image, GREY, dtype=np.float32)
    else:
        radius = blur_radius if blur_radius is not None else max(2.0, image.shape[0] / 16)
        back = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32)
    out = m * image.astype(np.float32) + (1.0 - m) * back
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- inputs


def as_rgb(image: Any) -> np.ndarray:
    """PIL image, uint8 array [H,W,3]/[H,W], or float tensor [3,H,W] in [-1,1] -> uint8 [H,W,3]."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if hasattr(image, "detach"):  # a torch tensor; imported lazily so this module stays torch-free
        from facelab.imaging import to_uint8

        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"expected an image tensor [3,H,W] in [-1,1], got shape {tuple(image.shape)}")
        return to_uint8(image)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image array, got dtype {arr.dtype} (convert floats to 0..255 uint8)")
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return arr
    raise ValueError(f"expected an image array [H,W,3] or [H,W], got shape {arr.shape}")


def as_mask(mask: Any) -> np.ndarray:
    """PIL "L" image, uint8 or float array/tensor [H,W] or [1,H,W] -> float32 [H,W] in [0,1]."""
    if isinstance(mask, Image.Image):
        return np.asarray(mask.convert("L"), dtype=np.float32) / 255.0
    if hasattr(mask, "detach"):
        mask = mask.detach().float().cpu().numpy()
    arr = np.asarray(mask)
    if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[2]):
        arr = arr.reshape(arr.shape[:2] if arr.shape[2] == 1 else arr.shape[1:])
    if arr.ndim != 2:
        raise ValueError(f"expected a mask [H,W] or [1,H,W], got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if not np.issubdtype(arr.dtype, np.floating) or not np.isfinite(arr).all():
        raise ValueError(f"expected a finite float mask in [0,1] or a uint8 mask, got dtype {arr.dtype}")
    return np.clip(arr.astype(np.float32), 0.0, 1.0)


def mask_to_pil(mask: Any) -> Image.Image:
    """Mask (anything as_mask takes) -> 8-bit "L" PIL image, 255 = foreground."""
    return Image.fromarray(np.round(as_mask(mask) * 255.0).astype(np.uint8), mode="L")


# --------------------------------------------------------------------------- variants


def variants(image: Any, mask: Any, blur_radius: float | None = None) -> dict[str, Image.Image]:
    """Original, grey and blur variants plus the mask itself, as PIL images of the image's size."""
    rgb = as_rgb(image)
    m = as_mask(mask)
    if m.shape != rgb.shape[:2]:
        raise ValueError(f"mask shape {m.shape} does not match image {rgb.shape[:2]}")
    out = {v: Image.fromarray(composite(rgb, m, v, blur_radius)) for v in VARIANTS}
    out["mask"] = mask_to_pil(m)
    return out


def item_variants(item: Mapping[str, Any], blur_radius: float | None = None) -> dict[str, Image.Image]:
    """Variants of a FaceDataset item from its ground-truth "mask" (synthfaces)."""
    if item.get("mask") is None:
        raise ValueError("this dataset item has no ground-truth 'mask'; compute one with "
                         "rembg_mask(image, get_session(...)) and call variants(image, mask)")
    return variants(item["image"], item["mask"], blur_radius)


# --------------------------------------------------------------------------- rembg


def _import_rembg() -> Any:
    """Import rembg, refusing clearly where it would sys.exit(1) for want of onnxruntime."""
    if importlib.util.find_spec("onnxruntime") is None:
        raise ImportError("rembg needs onnxruntime, which is not installed (pip install onnxruntime)")
    # rembg's import eagerly JIT-compiles pymatting (~45-70 s cold) for alpha matting, which
    # facelab's mask-only use never calls; without the JIT the import takes ~1.5 s.
    os.environ.setdefault("NUMBA_DISABLE_JIT", "1")
    import rembg

    return rembg


def _session_class(model_name: str) -> Any:
    """rembg's session class for model_name."""
    _import_rembg()
    from rembg.sessions import sessions

    return sessions[model_name]


def _downloads_allowed(allow_download: bool | None) -> bool:
    """Explicit choice, else no downloads when HF_HUB_OFFLINE or FACELAB_OFFLINE is set truthy."""
    if allow_download is not None:
        return allow_download
    flags = (os.environ.get(k, "").strip().lower() for k in ("HF_HUB_OFFLINE", "FACELAB_OFFLINE"))
    return not any(f in ("1", "true", "yes", "on") for f in flags)


def _missing_message(model_name: str, expected: str, legacy: str, why: str) -> str:
    """The error text for a named model that is neither on disk nor downloadable."""
    fname = REMBG_MODELS[model_name]
    return (f"rembg model {model_name!r} is missing: expected {expected} (or {legacy}). {why} "
            f"Put {fname} there by hand (from {_RELEASES}{fname}), or point REMBG_HOME (or U2NET_HOME, "
            f"which wins when set) at a folder holding models/{model_name}/{fname}.")


def _named_model_file(model_name: str, allow_download: bool | None) -> str | None:
    """Path of the named model on disk, or None where rembg may download it; raise when offline."""
    cls = _session_class(model_name)
    fname = REMBG_MODELS[model_name]
    found = cls.resolve_existing(fname)
    if found is not None:
        return str(found)
    expected = os.path.join(cls.model_dir(), fname)
    if not _downloads_allowed(allow_download):
        raise RembgModelMissingError(_missing_message(
            model_name, expected, os.path.join(cls.legacy_home(), fname),
            "Downloads are off (offline: HF_HUB_OFFLINE/FACELAB_OFFLINE is set, or allow_download=False)."))
    return None


def _custom_model_file(model_path: str | os.PathLike | None) -> str:
    """Validated absolute path of a custom ONNX model, inside rembg's model folders as rembg requires."""
    if model_path is None:
        raise ValueError(f"model {CUSTOM_MODEL!r} needs model_path=<file.onnx>")
    cls = _session_class(CUSTOM_MODEL)
    path = os.path.abspath(os.path.expanduser(os.fspath(model_path)))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"custom rembg model file not found: {path}")
    try:
        return cls.validate_model_path(model_path=path)
    except ValueError as exc:
        raise ValueError(
            f"rembg loads custom models only from inside its model folder: {path} is outside "
            f"{cls.rembg_home()} (and {cls.legacy_home()}). Move the file there, or set REMBG_HOME "
            f"(or U2NET_HOME, which wins when set) to a folder that contains it.") from exc


def _new_session(model_name: str, model_path: str | None) -> Any:
    """Create a rembg session (a named model without model_path downloads), with clear errors."""
    from rembg import new_session

    kwargs = {"model_path": model_path} if model_name == CUSTOM_MODEL else {}
    try:
        return new_session(model_name, **kwargs)
    except Exception as exc:  # pooch, requests and onnxruntime raise many unrelated types
        cls = _session_class(model_name)
        if model_path is None and cls.resolve_existing(REMBG_MODELS[model_name]) is None:
            fname = REMBG_MODELS[model_name]
            raise RembgModelMissingError(_missing_message(
                model_name, os.path.join(cls.model_dir(), fname), os.path.join(cls.legacy_home(), fname),
                f"Downloading it failed (offline?): {type(exc).__name__}: {exc}.")) from exc
        raise RuntimeError(f"could not load rembg model {model_name!r} from "
                           f"{model_path or cls.model_dir()}: {exc}") from exc


def get_session(model_name: str = "u2net", model_path: str | os.PathLike | None = None,
                allow_download: bool | None = None) -> Any:
    """One cached rembg session per (model, file): named models, or "u2net_custom" with model_path."""
    if model_name != CUSTOM_MODEL and model_name not in REMBG_MODELS:
        raise ValueError(f"unknown rembg model {model_name!r}; choose one of "
                         f"{', '.join([*REMBG_MODELS, CUSTOM_MODEL])}")
    if model_name != CUSTOM_MODEL and model_path is not None:
        raise ValueError(f"model_path is only for {CUSTOM_MODEL!r}; got model {model_name!r}")
    with _SESSIONS_LOCK:
        if model_name == CUSTOM_MODEL:
            path = _custom_model_file(model_path)
        else:
            path = _named_model_file(model_name, allow_download)
        key = (model_name, path or "")
        if key not in _SESSIONS:
            session = _new_session(model_name, path)
            # Key a downloaded model by its final path so the next call finds it cached.
            if path is None:
                key = (model_name, str(_session_class(model_name).resolve_existing(REMBG_MODELS[model_name])))
            _SESSIONS[key] = session
        return _SESSIONS[key]


def rembg_mask(image: Image.Image | np.ndarray, session: Any) -> np.ndarray:
    """Foreground mask of an RGB image from a rembg session: float32 [H,W] in [0,1]."""
    rgb = as_rgb(image)
    from rembg import remove

    # A metadata-free copy: rembg applies EXIF orientation, which would rotate the mask
    # away from the pixels the caller holds.
    out = remove(Image.fromarray(rgb), session=session, only_mask=True)
    mask = np.asarray(out.convert("L"), dtype=np.float32) / 255.0
    if mask.shape != rgb.shape[:2]:
        raise RuntimeError(f"rembg returned a mask of shape {mask.shape} for an image of {rgb.shape[:2]}")
    return mask
