"""Uploaded photos into model inputs: checked, normalised, face found and cropped (facelab.uploads).

facelab.uploads does the checking (format, truncation, decompression bombs, pixel limit) and the face
crop; where it is not installed, a plain checked open plus a centred square crop stands in and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from facelab.lab.bundles import LabError

FALLBACK_MAX_PIXELS = 40_000_000  # refuse larger uploads even without facelab.uploads


def load_photo(source: Any) -> Image.Image:
    """An uploaded file (path or PIL) as an RGB PIL image; a LabError says what is wrong with it."""
    if source is None or (isinstance(source, str) and not source):
        raise LabError("no photo given: upload a JPEG, PNG or WebP image")
    try:
        from facelab.uploads import load_upload
    except ImportError:
        return _fallback_load(source)
    try:
        return load_upload(source)
    except ValueError as err:
        raise LabError(str(err)) from err


def _fallback_load(source: Any) -> Image.Image:
    """Checked open without facelab.uploads: image-ness, full decode, pixel limit, mode."""
    from facelab.data.transforms import to_rgb

    if isinstance(source, Image.Image):
        return to_rgb(source)
    name = Path(str(source)).name
    try:
        with Image.open(source) as img:
            if img.width * img.height > FALLBACK_MAX_PIXELS:
                raise LabError(f"{name}: {img.width}×{img.height} is over the {FALLBACK_MAX_PIXELS:,} pixel limit")
            img.load()
            return to_rgb(img)
    except LabError:
        raise
    except Image.DecompressionBombError as err:
        raise LabError(f"{name}: refused as a decompression bomb ({err})") from err
    except (OSError, ValueError, SyntaxError) as err:
        raise LabError(f"{name}: not a readable image (JPEG, PNG or WebP expected): {err}") from err


def face_crop(image: Image.Image, size: int) -> tuple[Image.Image, str]:
    """The face found in image, cropped, centred and resized to size×size, and how it was found."""
    try:
        from facelab.uploads import crop_face
    except ImportError:
        from facelab.data.transforms import center_crop_resize

        return center_crop_resize(image, size), "centre square crop (no face detector installed)"
    try:
        return crop_face(image, size)
    except ValueError as err:
        raise LabError(str(err)) from err


def prepare_photo(source: Any, size: int) -> tuple[Image.Image, str]:
    """Load, check and face-crop an upload to size×size; returns (face, how it was cropped)."""
    return face_crop(load_photo(source), int(size))
