"""User uploads -> checked RGB PIL images, and faces found, cropped and centred like the training data.

Everything a user hands the app goes through load_upload() before any model sees it: the file
must be a real, complete image of an accepted format and of a sane size; anything else raises
UploadError (a ValueError) with a message the UI can show as it is. crop_face() then finds the
face with scikit-image's LBP frontal-face cascade and frames it the way CelebA-aligned crops are
framed (the seeds' 178x218 -> centre 178x178 -> 64x64), so an uploaded photo lands in the
distribution the models were trained on.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from facelab.data.transforms import resize_square, to_rgb

MAX_PIXELS = 40_000_000  # 8000x5000: larger than any phone photo, small enough to decode in ~1 s
MAX_BYTES = 50 * 1024 * 1024
MIN_SIDE = 16
# MPO is how Pillow opens most phone JPEGs (they carry a second, preview frame).
FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WebP", "BMP": "BMP", "GIF": "GIF",
           "TIFF": "TIFF"}

# Framing of a CelebA-aligned 178x178 centre crop relative to the LBP cascade's face box:
# measured on skimage's astronaut against CelebA's mean aligned landmarks (eyes at y=0.51,
# mouth at y=0.74, eye distance 0.21 of the crop), the crop is 2.15 box sides wide and its
# centre sits 0.16 box sides above the box centre (the crop keeps the hair, not the neck).
FACE_SCALE = 2.15
FACE_SHIFT_UP = 0.16
_WORK_SIDE = 192  # detection runs on a copy whose shorter side is this (faces >= ~12% of it)
_DETECT_LOCK = threading.Lock()


class UploadError(ValueError):
    """An upload is not an acceptable image; the message says why, in words a user can act on."""


@dataclass(frozen=True)
class FaceBox:
    """A detected face: the square box (left, top, side) in image pixels."""

    left: float
    top: float
    side: float


def load_upload(source: Any, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> Image.Image:
    """A path, bytes, binary file, PIL image or array -> checked RGB PIL image (EXIF-rotated); else UploadError."""
    if isinstance(source, dict):  # Gradio file payloads: {"path": ..., "orig_name": ...}
        source = source.get("path")
    if source is None or (isinstance(source, str) and not source.strip()):
        raise UploadError("no image given: upload a photo (JPEG, PNG or WebP)")
    if isinstance(source, np.ndarray):
        source = _from_array(source)
    if isinstance(source, Image.Image):
        return _decode(source, "image", max_pixels)
    stream, name, owned = _open_stream(source, max_bytes)
    try:
        with Image.open(stream) as img:
            _check_format(img, name)
            return _decode(img, name, max_pixels)
    except Image.DecompressionBombError as err:
        raise UploadError(f"{name}: refused as a decompression bomb ({err})") from err
    except UnidentifiedImageError as err:
        raise UploadError(f"{name}: not an image file (or not a format facelab reads: "
                          f"{', '.join(sorted(set(FORMATS.values())))})") from err
    finally:
        if owned:
            stream.close()


def _decode(img: Image.Image, name: str, max_pixels: int) -> Image.Image:
    """Size check from the header, then decode and normalise; decoder failures -> UploadError."""
    _check_size(img.size, max_pixels)
    try:
        img.load()
    except Image.DecompressionBombError:
        raise
    except Exception as err:  # noqa: BLE001 - decoders raise OSError, SyntaxError, EOFError, zlib errors...
        raise UploadError(f"{name}: the image data is truncated or corrupt and cannot be decoded "
                          f"({type(err).__name__}: {err})") from err
    return _normalise(img)


def _open_stream(source: Any, max_bytes: int) -> tuple[BinaryIO, str, bool]:
    """A readable binary stream for a path/bytes/file (and whether we opened it), after the byte-size check."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > max_bytes:
            raise UploadError(f"upload is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB")
        return io.BytesIO(data), "upload", True
    if hasattr(source, "read"):
        return source, Path(str(getattr(source, "name", "upload"))).name, False
    path = Path(getattr(source, "name", source)) if not isinstance(source, (str, Path)) else Path(source)
    if not path.is_file():
        raise UploadError(f"{path.name}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise UploadError(f"{path.name} is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB")
    if size == 0:
        raise UploadError(f"{path.name} is empty (0 bytes)")
    return open(path, "rb"), path.name, True  # noqa: SIM115 - closed in load_upload's finally


def _check_format(img: Image.Image, name: str) -> None:
    if img.format not in FORMATS:
        raise UploadError(f"{name}: {img.format or 'unknown'} images are not accepted; "
                          f"use {', '.join(sorted(set(FORMATS.values())))}")


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    """Refuse by the header's size, before decoding: bombs never reach memory."""
    width, height = size
    limit = max_pixels
    if Image.MAX_IMAGE_PIXELS is not None:
        limit = min(limit, 2 * Image.MAX_IMAGE_PIXELS)
    if width * height > limit:
        raise UploadError(f"image is {width}x{height} = {width * height / 1e6:.1f} megapixels; the limit is "
                          f"{limit / 1e6:.1f} megapixels: downscale it before uploading")
    if min(width, height) < MIN_SIDE:
        raise UploadError(f"image is {width}x{height}; it must be at least {MIN_SIDE} pixels on each side")


def _normalise(img: Image.Image) -> Image.Image:
    """Mode (RGBA, LA, P, CMYK, I;16, F...) and EXIF orientation -> plain RGB, detached from any file."""
    try:
        rgb = to_rgb(img)
    except ValueError as err:
        raise UploadError(f"cannot use an image of mode {img.mode!r}: {err}") from err
    return rgb.copy() if rgb is img else rgb


def _from_array(arr: np.ndarray) -> Image.Image:
    """An HxW or HxWxC uint8/float array (e.g. from gr.Image(type='numpy')) -> PIL image."""
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise UploadError(f"an image array must be HxW or HxWx(1|3|4), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        scale = 255.0 if arr.size and float(np.nanmax(arr)) <= 1.0 else 1.0
        arr = np.clip(np.nan_to_num(arr.astype(np.float64)) * scale + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)


@lru_cache(maxsize=1)
def _cascade() -> Any:
    from skimage.data import lbp_frontal_face_cascade_filename
    from skimage.feature import Cascade

    return Cascade(lbp_frontal_face_cascade_filename())


def detect_faces(img: Image.Image) -> list[FaceBox]:
    """Frontal faces in img (LBP cascade on a ~192-px grey copy), largest first, in img's pixels."""
    grey = img.convert("L")
    width, height = grey.size
    scale = _WORK_SIDE / min(width, height)
    scale = min(scale, 2 * _WORK_SIDE / max(width, height))  # very wide images: bound the work
    work = grey.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.BILINEAR)
    arr = np.asarray(work, dtype=np.float32) / 255.0
    # edge padding lets the detector see faces that touch the border (tight face crops)
    pad = round(0.15 * min(arr.shape))
    arr = np.pad(arr, pad, mode="edge")
    side = min(arr.shape)
    with _DETECT_LOCK:
        found = _cascade().detect_multi_scale(img=arr, scale_factor=1.2, step_ratio=1, min_size=(24, 24),
                                              max_size=(side, side), min_neighbor_number=4)
    boxes = [FaceBox((d["c"] - pad) / scale, (d["r"] - pad) / scale, d["width"] / scale) for d in found]
    return sorted(boxes, key=lambda b: -b.side)


def face_crop_box(face: FaceBox) -> tuple[int, int, int, int]:
    """The square (left, top, right, bottom) that frames face as a CelebA-aligned crop does."""
    side = FACE_SCALE * face.side
    cx = face.left + face.side / 2
    cy = face.top + face.side / 2 - FACE_SHIFT_UP * face.side
    left, top = round(cx - side / 2), round(cy - side / 2)
    return left, top, left + round(side), top + round(side)


def crop_face(img: Image.Image, size: int) -> tuple[Image.Image, str]:
    """Find the largest face, crop a CelebA-like square around it, resize to size; else centre-crop. Says which."""
    img = to_rgb(img)
    faces = detect_faces(img)
    if not faces:
        out = resize_square(img, size)
        return out, (f"No face found: used the centre square of the {img.size[0]}x{img.size[1]} image, "
                     f"resized to {size}x{size}. For best results upload a frontal face photo.")
    box = face_crop_box(faces[0])
    crop, padded = _crop_padded(img, box)
    out = crop.resize((size, size), Image.LANCZOS, reducing_gap=3.0)
    face = faces[0]
    others = f" ({len(faces)} faces found; used the largest)" if len(faces) > 1 else ""
    edge = "; the image edge was extended to fill the frame" if padded else ""
    return out, (f"Face found at x={face.left:.0f}, y={face.top:.0f} ({face.side:.0f} px){others}: "
                 f"cropped a {box[2] - box[0]} px square centred on it, framed like the CelebA-aligned "
                 f"training images{edge}, resized to {size}x{size}.")


def _crop_padded(img: Image.Image, box: tuple[int, int, int, int]) -> tuple[Image.Image, bool]:
    """Crop box from img; parts outside the image repeat the edge pixels (as a face at the border needs)."""
    left, top, right, bottom = box
    width, height = img.size
    if left >= 0 and top >= 0 and right <= width and bottom <= height:
        return img.crop(box), False
    arr = np.asarray(img)
    pads = ((max(0, -top), max(0, bottom - height)), (max(0, -left), max(0, right - width)), (0, 0))
    arr = np.pad(arr, pads, mode="edge")
    y0, x0 = top + pads[0][0], left + pads[1][0]
    return Image.fromarray(arr[y0:y0 + bottom - top, x0:x0 + right - left]), True


def prepare_upload(source: Any, size: int, max_pixels: int = MAX_PIXELS) -> tuple[Image.Image, str]:
    """load_upload then crop_face: the one call the app makes for a photo to encode."""
    return crop_face(load_upload(source, max_pixels=max_pixels), size)
