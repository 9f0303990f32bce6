"""Which dataset image files are usable, and why the others are not: one verdict per file.

The rule every real source applies, at construction (a cheap scan) and again on load:

- skipped: "missing", "empty" (0 bytes), "not_an_image", "truncated", "unreadable" (any other
  decode error), "degenerate" (a side of 1 px), "too_small" (the square that is resized — the
  shorter side, or the crop when one is set — is under half the model's image_size: more than
  2x upsampling), "transparent" (alpha 0 everywhere: nothing but the grey it is composited on);
- kept and reported: "upsampled" (that square is at least image_size/2 but under image_size).

The scan reads each file's header and its last bytes; only files whose end is not what a
complete PNG/JPEG/WebP ends with, files of other formats, and images with an alpha channel are
decoded (JPEGs at 1/8 scale): a truncated file is found without decoding the good ones. A file
damaged in the middle that still ends well passes the scan; it fails to decode on load and is
skipped then ("unreadable" or "truncated", counted in the process that loaded it).
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from typing import BinaryIO, Iterable

from PIL import Image, UnidentifiedImageError

SKIP_REASONS = ("missing", "empty", "not_an_image", "truncated", "unreadable", "degenerate", "too_small",
                "transparent")
OK, UPSAMPLED = "ok", "upsampled"
LOAD_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class SkippedImage(ValueError):
    """An image that decodes but that the data rule refuses (degenerate, too small, transparent)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def min_side(size: int) -> int:
    """The shortest square side (shorter side or crop, in source pixels) accepted at size px."""
    return (size + 1) // 2


def size_verdict(width: int, height: int, size: int | None, crop: float | None = None) -> str:
    """"ok", "upsampled", "degenerate" or "too_small" for a width x height source at size px (None: any)."""
    if min(width, height) < 2:
        return "degenerate"
    if size is None:
        return OK
    side = min(width, height) if crop is None else min(crop, min(width, height))
    if side < min_side(size) or (crop is not None and crop > min(width, height) + 1e-6):
        return "too_small"  # a crop larger than the image is as unusable as a tiny image
    return UPSAMPLED if side < size else OK


def has_alpha(img: Image.Image) -> bool:
    """True when the image carries transparency (an alpha band or a transparent colour)."""
    return img.mode in _ALPHA_MODES or "transparency" in img.info


def is_transparent(img: Image.Image) -> bool:
    """True when every pixel of a loaded image is fully transparent (alpha 0 everywhere)."""
    if not has_alpha(img):
        return False
    alpha = (img if img.mode == "RGBA" else img.convert("RGBA")).getchannel("A")
    return alpha.getextrema()[1] == 0


def require_usable(img: Image.Image, size: int | None, crop: float | None = None, loaded: bool = True) -> str:
    """Apply the rule to an opened image: "ok" / "upsampled", or raise SkippedImage with the reason.

    loaded=False checks only the geometry (from the header), before any pixel is decoded.
    """
    verdict = size_verdict(*img.size, size, crop)
    if verdict == "degenerate":
        raise SkippedImage(verdict, f"degenerate: a {img.size[0]}x{img.size[1]} image holds no face")
    if verdict == "too_small":
        what = f"crop {crop:g} of a " if crop is not None else "a "
        raise SkippedImage(verdict, f"too small: {what}{img.size[0]}x{img.size[1]} image for a {size} px model "
                                    f"(the square resized must be at least {min_side(size or 1)} px)")
    if loaded:
        refuse_transparent(img)
    return verdict


def refuse_transparent(img: Image.Image) -> None:
    """Raise SkippedImage("transparent") for a loaded image with alpha 0 everywhere."""
    if is_transparent(img):
        raise SkippedImage("transparent", "transparent: alpha is 0 everywhere, only the grey backdrop would be seen")


def reason_of(err: BaseException) -> str:
    """The skip reason for an exception raised while opening or decoding an image."""
    if isinstance(err, SkippedImage):
        return err.reason
    if isinstance(err, FileNotFoundError):
        return "missing"
    if isinstance(err, UnidentifiedImageError):
        return "not_an_image"
    if isinstance(err, EOFError) or "truncated" in str(err).lower():
        return "truncated"
    return "unreadable"


def _complete(head: bytes, tail: bytes, length: int) -> bool | None:
    """Does the file end the way a complete file of its format does? None: no cheap way to tell."""
    if head.startswith(b"\x89PNG"):
        return tail.endswith(_PNG_END)
    if head.startswith(b"\xff\xd8"):
        return tail.rstrip(b"\x00").endswith(b"\xff\xd9")  # some writers pad after the end marker
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return int.from_bytes(head[4:8], "little") + 8 <= length
    return None


def _decode(img: Image.Image) -> None:
    """Decode every byte of the pixel data (JPEGs at 1/8 scale: the whole stream is still read)."""
    if img.format == "JPEG":
        img.draft(img.mode, (max(1, img.size[0] // 8), max(1, img.size[1] // 8)))
    img.load()


def _verdict(fp: BinaryIO, size: int, crop: float | None) -> str:
    fp.seek(0, io.SEEK_END)
    length = fp.tell()
    if length == 0:
        return "empty"
    fp.seek(0)
    head = fp.read(16)
    fp.seek(max(0, length - 16))
    complete = _complete(head, fp.read(16), length)
    fp.seek(0)
    if complete is False and head.startswith(b"RIFF"):
        return "truncated"  # PIL cannot even open a cut WebP: say what it is
    with Image.open(fp) as img:
        verdict = require_usable(img, size, crop, loaded=False)
        if complete is not True or has_alpha(img):
            _decode(img)  # a PNG without its end chunk but with all its pixels is kept
            refuse_transparent(img)  # not require_usable: a drafted JPEG is smaller than its file
        return verdict


def classify(source: str | Path | bytes | BinaryIO, size: int, crop: float | None = None) -> str:
    """One file's verdict: "ok", "upsampled" or a SKIP_REASONS entry; never raises for a bad file."""
    try:
        if isinstance(source, (bytes, bytearray)):
            return _verdict(io.BytesIO(source), size, crop)
        if isinstance(source, (str, Path)):
            with open(source, "rb") as fp:
                return _verdict(fp, size, crop)
        return _verdict(source, size, crop)
    except LOAD_ERRORS as err:
        return reason_of(err)


def tally(verdicts: Iterable[str]) -> dict[str, int]:
    """Counts per skip reason, in SKIP_REASONS order, zeros left out."""
    counts = Counter(verdicts)
    return {r: counts[r] for r in SKIP_REASONS if counts[r]}


def describe(counts: dict[str, int]) -> str:
    """"2 truncated, 1 not_an_image" (or "none")."""
    return ", ".join(f"{n} {reason}" for reason, n in counts.items() if n) or "none"
