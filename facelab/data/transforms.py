"""Transforms from raw source data to FaceDataset values: images (any PIL mode -> RGB, EXIF
orientation, centre crop + resize) and labels (bool / ±1 / 0-1 / FFHQ JSON -> {0,1}).

All loaders go through load_image() so that CelebA, FFHQ, folders and Hub images meet the
same geometry as the seeds used (torchvision's CenterCrop then Resize, done with PIL here).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from facelab.data.background import GREY
from facelab.data.file_checks import refuse_transparent, require_usable

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
_ORIENTATION = 0x0112  # EXIF tag


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB, with EXIF orientation applied.

    Transparency (RGBA, LA, PA, P with a transparent index) is composited over flat mid-grey:
    a transparent background means "background removed", which is what the seed-002 grey
    variant shows, so a cut-out photo lands in that variant's distribution rather than on
    a black or white one the model never saw. 16-bit and 32-bit integer greys are scaled
    from 0..65535 (or kept when already within 0..255), float greys from [0,1].
    """
    if img.getexif().get(_ORIENTATION, 1) != 1:
        img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        back = Image.new("RGBA", rgba.size, (GREY, GREY, GREY, 255))
        return Image.alpha_composite(back, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if mode == "F":
            arr = arr * 255.0 if arr.size and np.nanmax(arr) <= 1.0 else arr
        elif mode.startswith("I;16") or (arr.size and arr.max() > 255):
            arr = arr / 257.0
        grey = np.clip(np.nan_to_num(arr) + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    try:
        return img.convert("RGB")
    except ValueError as err:
        raise ValueError(f"cannot convert a PIL image of mode {mode!r} to RGB") from err


def crop_box(width: float, height: float, crop: float | None = None) -> tuple[float, float, float, float]:
    """The centred square (left, top, right, bottom) of side crop (default: the shorter side)."""
    side = min(width, height) if crop is None else crop
    if side <= 0:
        raise ValueError(f"crop must be positive, got {crop}")
    if side > min(width, height) + 1e-6:
        raise ValueError(f"crop {crop} is larger than the image's shorter side ({width}x{height})")
    # torchvision's CenterCrop rounds the offset; doing the same keeps seed pipelines pixel-aligned
    left = float(round((width - side) / 2.0))
    top = float(round((height - side) / 2.0))
    return left, top, left + side, top + side


def resize_square(img: Image.Image, size: int, crop: float | None = None,
                  resample: int = Image.LANCZOS) -> Image.Image:
    """Centre-crop img (any mode, kept) to a square of side crop and resize it to size×size."""
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    box = tuple(int(round(v)) for v in crop_box(*img.size, crop))
    # crop first: resize(box=...) would let the filter read pixels outside the crop into the edges
    square = img if box == (0, 0, *img.size) else img.crop(box)
    if square.size == (size, size):
        return square.copy()
    # reducing_gap: a box pre-reduction before Lanczos, visually identical and much faster at 1024->128
    return square.resize((size, size), resample, reducing_gap=3.0)


def center_crop_resize(img: Image.Image, size: int, crop: int | None = None) -> Image.Image:
    """RGB size×size image: mode normalised (see to_rgb), centred square crop, Lanczos resize.

    crop=None takes the largest centred square (CelebA's 178×218 -> its central 178×178,
    the seeds' CenterCrop(178) convention); an int takes a smaller centred square (e.g. 140).
    """
    return resize_square(to_rgb(img), size, crop)


def _draft_scale(img: Image.Image, size: int, crop: float | None) -> int:
    """JPEG DCT-domain downscale factor (8, 4, 2 or 1) that keeps the crop box exact in pixels."""
    if img.format != "JPEG" or img.getexif().get(_ORIENTATION, 1) != 1:
        return 1
    width, height = img.size
    side = min(width, height) if crop is None else crop
    if side != int(side):
        return 1
    side = int(side)
    for scale in (8, 4, 2):
        whole = all(v % scale == 0 for v in (width, height, side))
        centred = (width - side) % (2 * scale) == 0 and (height - side) % (2 * scale) == 0
        if whole and centred and side // scale >= size:
            return scale
    return 1


def load_image(path: str | Path | BinaryIO, size: int, crop: float | None = None) -> Image.Image:
    """Open an image file (path or binary stream), return center_crop_resize of it; raises on broken files.

    Images the data rule refuses (file_checks: degenerate, too small, fully transparent) raise
    SkippedImage, so a dataset built without its scan still never trains on them.
    """
    with Image.open(path) as img:
        require_usable(img, size, crop, loaded=False)  # from the header: no decode for a refused size
        width = img.size[0]
        scale = _draft_scale(img, size, crop)
        if scale > 1:
            # decode at 1/scale (2-3x faster for CelebA, ~4x for 1024px JPEGs), same crop box
            img.draft("RGB", (img.size[0] // scale, img.size[1] // scale))
        img.load()
        refuse_transparent(img)
        eff_crop = None if crop is None else crop * img.size[0] / width
        return resize_square(to_rgb(img), size, eff_crop)


def load_mask(path: str | Path, size: int, crop: float | None = None) -> np.ndarray:
    """A mask image (L, uint8, 255 = foreground) -> float32 [size,size] in [0,1], same geometry."""
    with Image.open(path) as img:
        grey = img.convert("L")
    out = resize_square(grey, size, crop, resample=Image.BILINEAR)
    return np.asarray(out, dtype=np.float32) / 255.0


# ---- labels -------------------------------------------------------------------------------

_WORDS = {"true": 1.0, "yes": 1.0, "false": 0.0, "no": 0.0}

# CelebA-named attributes derivable from FFHQ-Features-Dataset JSON, in this order; the age
# groups are the seed-000 (HVAE study) buckets [0-6], [7-14], [15-49], [50+] plus its
# restriction to faces aged 15 and over.
FFHQ_ATTRIBUTES = ("Male", "Young", "Eyeglasses", "Smiling", "Mustache", "No_Beard", "Bald",
                   "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Wearing_Lipstick",
                   "Age_0_6", "Age_7_14", "Age_15_49", "Age_50_plus", "Age_over_15")
AGE_GROUPS = {"Age_0_6": (0, 7), "Age_7_14": (7, 15), "Age_15_49": (15, 50),
              "Age_50_plus": (50, math.inf), "Age_over_15": (15, math.inf)}
_HAIR = {"black": "Black_Hair", "blond": "Blond_Hair", "brown": "Brown_Hair", "gray": "Gray_Hair",
         "grey": "Gray_Hair"}


def _as_number(value: object, name: str) -> float:
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _WORDS:
            return _WORDS[word]
        value = word
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"label {name!r}: value {value!r} is not a bool, 0/1 or -1/+1") from None


def to_binary(values: object, name: str = "attribute") -> np.ndarray:
    """Cast one label column (bools, 0/1, -1/+1, "true"/"false") to float32 {0,1}."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        arr = np.array([_as_number(v, name) for v in arr.ravel()], dtype=np.float64)
    arr = arr.ravel()
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(f"label {name!r} has missing values (NaN/None)")
    ones = arr == 1
    if (ones | (arr == 0)).all():
        return ones.astype(np.float32)
    if (ones | (arr == -1)).all():
        return ones.astype(np.float32)
    shown = ", ".join(repr(v) for v in np.unique(arr)[:6].tolist())
    raise ValueError(f"label {name!r} is not binary: values {shown} (expected bools, 0/1 or -1/+1)")


def is_binary(values: object) -> bool:
    """True when to_binary accepts the column."""
    try:
        to_binary(values)
    except ValueError:
        return False
    return True


def ffhq_record(label: object) -> dict | None:
    """Unwrap one FFHQ label file: a list of faces (first face), {"faceAttributes": ...} or flat."""
    if isinstance(label, list):
        label = label[0] if label else None
    if not isinstance(label, dict) or not label:
        return None
    inner = label.get("faceAttributes")
    return inner if isinstance(inner, dict) else label


def ffhq_attributes(label: object, young_age: float = 30.0) -> tuple[dict[str, float], float]:
    """CelebA-named {0,1} attributes and the age (NaN if absent) from one FFHQ label file.

    Male: gender == "male"; Young: age < young_age (CelebA's "Young" was an annotator's
    judgement; 30 approximates it); Eyeglasses: any glasses but "NoGlasses" (CelebA counts
    sunglasses too); Smiling: smile > 0.5; Mustache / No_Beard / Bald: the Face API
    confidences > 0.5; hair colours: the most confident colour; Age_*: see AGE_GROUPS.
    Only attributes the file carries appear in the dict.
    """
    rec = ffhq_record(label)
    if rec is None:
        return {}, math.nan
    out: dict[str, float] = {}
    if rec.get("gender") is not None:
        gender = str(rec["gender"]).strip().lower()
        if gender not in ("male", "female", "m", "f", "man", "woman"):
            raise ValueError(f"FFHQ label: unknown gender {rec['gender']!r} (expected male/female)")
        out["Male"] = float(gender in ("male", "m", "man"))
    age = math.nan if rec.get("age") is None else _as_number(rec["age"], "age")
    if not math.isnan(age):
        out["Young"] = float(age < young_age)
        out.update({k: float(lo <= age < hi) for k, (lo, hi) in AGE_GROUPS.items()})
    glasses = rec.get("glasses")
    if glasses is not None:
        out["Eyeglasses"] = (float(glasses.strip().lower() not in ("noglasses", "none", "no", "false", ""))
                             if isinstance(glasses, str) else _as_number(glasses, "glasses"))
    if rec.get("smile") is not None:
        out["Smiling"] = float(_as_number(rec["smile"], "smile") > 0.5)
    out.update(_ffhq_face_details(rec))
    return out, age


def _ffhq_face_details(rec: dict) -> dict[str, float]:
    out: dict[str, float] = {}
    hair_face = rec.get("facialHair")
    if isinstance(hair_face, dict):
        out["Mustache"] = float(_as_number(hair_face.get("moustache", 0), "moustache") > 0.5)
        out["No_Beard"] = float(_as_number(hair_face.get("beard", 0), "beard") <= 0.5)
    hair = rec.get("hair")
    if isinstance(hair, dict):
        out["Bald"] = float(_as_number(hair.get("bald", 0), "bald") > 0.5)
        colours = [c for c in hair.get("hairColor") or [] if isinstance(c, dict)]
        if colours and not hair.get("invisible", False):
            top = max(colours, key=lambda c: _as_number(c.get("confidence", 0), "confidence"))
            named = _HAIR.get(str(top.get("color", "")).lower())
            out.update({v: float(v == named) for v in set(_HAIR.values())})
    makeup = rec.get("makeup")
    if isinstance(makeup, dict) and "lipMakeup" in makeup:
        out["Wearing_Lipstick"] = _as_number(makeup["lipMakeup"], "lipMakeup")
    return out
