"""facelab.uploads on real files: every accepted format and mode, broken and hostile files, face crops."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from facelab.data.transforms import resize_square
from facelab.uploads import (
    FACE_SCALE, FACE_SHIFT_UP, MIN_SIDE, UploadError, crop_face, detect_faces, load_upload, prepare_upload,
)

ASTRO = Image.fromarray(skimage.data.astronaut())  # 512x512, one frontal face


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A non-square RGB photo (the astronaut's upper body), 120x96."""
    return ASTRO.crop((100, 0, 400, 240)).resize((120, 96), Image.LANCZOS)


def _diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b.convert("RGB"), np.float64)).mean())


def _save(img: Image.Image, path: Path, **kw) -> Path:
    img.save(path, **kw)
    return path


@pytest.mark.parametrize("mode, fmt, suffix, tol", [
    ("RGB", "JPEG", ".jpg", 6.0), ("RGB", "PNG", ".png", 0.0), ("RGB", "WEBP", ".webp", 0.0),
    ("L", "JPEG", ".jpg", 6.0), ("L", "PNG", ".png", 0.0), ("P", "PNG", ".png", 0.0),
    ("P", "GIF", ".gif", 0.0), ("CMYK", "JPEG", ".jpg", 8.0), ("RGB", "BMP", ".bmp", 0.0),
    ("RGB", "TIFF", ".tif", 0.0),
])
def test_formats_and_modes_become_rgb(tmp_path, photo, mode, fmt, suffix, tol):
    src = photo.convert(mode)
    kw = {"lossless": True} if fmt == "WEBP" else {"quality": 95} if fmt == "JPEG" else {}
    path = _save(src, tmp_path / f"img{suffix}", format=fmt, **kw)
    out = load_upload(path)
    assert out.mode == "RGB" and out.size == photo.size
    assert _diff(out, src) <= tol  # same picture, only the mode changed
    assert _diff(load_upload(path.read_bytes()), out) == 0  # bytes and path give the same image
    with open(path, "rb") as fh:
        assert _diff(load_upload(fh), out) == 0 and not fh.closed  # a caller's file stays open


def test_transparency_lands_on_mid_grey(tmp_path, photo):
    rgba = photo.convert("RGBA")
    alpha = np.full(photo.size[::-1], 255, np.uint8)
    alpha[:, :40] = 0  # left third transparent: "background removed"
    rgba.putalpha(Image.fromarray(alpha))
    for fmt, suffix in (("PNG", ".png"), ("WEBP", ".webp")):
        kw = {"lossless": True} if fmt == "WEBP" else {}
        out = np.asarray(load_upload(_save(rgba, tmp_path / f"a{suffix}", format=fmt, **kw)))
        assert np.abs(out[:, :40].astype(int) - 127).max() <= 1, fmt
        assert np.array_equal(out[:, 40:], np.asarray(photo)[:, 40:]), fmt
    pal = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    out = np.asarray(load_upload(_save(pal, tmp_path / "p.png", transparency=0)))
    hole = np.asarray(pal) == 0
    assert hole.any() and np.abs(out[hole].astype(int) - 127).max() <= 1


def test_16bit_greyscale_is_scaled_not_clipped(tmp_path):
    levels = np.tile(np.linspace(0, 255, 64).round().astype(np.uint16), (32, 1))
    img16 = Image.fromarray(levels * 257)  # full 16-bit range
    assert img16.mode.startswith("I;16")
    out = np.asarray(load_upload(_save(img16, tmp_path / "g16.png")))
    assert out.shape == (32, 64, 3)
    assert np.abs(out[..., 0].astype(int) - levels).max() <= 1  # 65535 -> 255, not clipped to 255 everywhere
    assert (out[..., 0] == out[..., 2]).all()


def test_exif_rotation_is_applied(tmp_path):
    stored = Image.new("RGB", (64, 32), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 16, 16))  # red in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = load_upload(_save(stored, tmp_path / "rot.jpg", exif=exif, quality=95))
    assert out.size == (32, 64)
    r, g, b = np.asarray(out)[4, 28].astype(int)  # after a clockwise turn, top-left goes to top-right
    assert r > 200 and b < 60


def test_pil_array_and_payload_inputs(tmp_path, photo):
    assert _diff(load_upload(photo.convert("LA")), photo.convert("L")) == 0
    path = _save(photo, tmp_path / "p.png")
    assert _diff(load_upload({"path": str(path), "orig_name": "me.png"}), photo) == 0  # a Gradio file payload
    arr = np.asarray(photo).astype(np.float32) / 255.0
    assert _diff(load_upload(arr), photo) <= 0.5
    with pytest.raises(UploadError, match="HxW"):
        load_upload(np.zeros((4, 4, 4, 4)))
    for nothing in (None, "", {"path": None}):
        with pytest.raises(UploadError, match="no image given"):
            load_upload(nothing)


def _png_header(width: int, height: int, data: bytes = b"") -> bytes:
    """A PNG whose IHDR claims width x height (8-bit grey), with the given zlib IDAT payload."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def test_hostile_and_broken_files(tmp_path, photo):
    text = tmp_path / "notes.png"
    text.write_text("these are my notes, not a picture\n" * 20)
    with pytest.raises(UploadError, match=r"notes\.png: not an image file"):
        load_upload(text)
    good = _save(photo, tmp_path / "full.jpg", quality=95).read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good[: len(good) * 6 // 10])
    with pytest.raises(UploadError, match=r"cut\.jpg: the image data is truncated or corrupt"):
        load_upload(cut)
    with pytest.raises(UploadError, match="truncated or corrupt"):  # lazily opened PIL image, same check
        load_upload(Image.open(cut))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(100_000, 100_000))  # 10 gigapixels claimed: PIL's own bomb guard
    with pytest.raises(UploadError, match="decompression bomb"):
        load_upload(bomb, max_pixels=10**12)
    # A real bomb: 81 megapixels of zeros compress to ~80 kB; refused from the header, never decoded.
    rows = zlib.compress(b"\x00" * (9001 * 9000), 9)
    real = tmp_path / "zeros.png"
    real.write_bytes(_png_header(9000, 9000, rows))
    assert real.stat().st_size < 200_000
    with pytest.raises(UploadError, match=r"9000x9000 = 81\.0 megapixels; the limit is 40\.0"):
        load_upload(real)
    with pytest.raises(UploadError, match="megapixels"):
        load_upload(photo, max_pixels=1000)


def test_small_empty_missing_and_unaccepted(tmp_path, photo):
    with pytest.raises(UploadError, match=f"at least {MIN_SIDE} pixels"):
        load_upload(_save(photo.resize((8, 8)), tmp_path / "tiny.png"))
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(UploadError, match="empty"):
        load_upload(tmp_path / "empty.jpg")
    with pytest.raises(UploadError, match="no such file"):
        load_upload(tmp_path / "gone.png")
    with pytest.raises(UploadError, match="PPM images are not accepted"):
        load_upload(_save(photo, tmp_path / "x.ppm"))
    with pytest.raises(UploadError, match="limit is 0 MB"):
        load_upload(_save(photo, tmp_path / "big.png"), max_bytes=10)
    assert issubclass(UploadError, ValueError)


def test_crop_face_frames_the_astronaut_like_celeba():
    out, desc = crop_face(ASTRO, 128)
    assert out.size == (128, 128) and out.mode == "RGB"
    assert desc.startswith("Face found at x=") and "128x128" in desc
    # Detected again in the crop, the face sits where the CelebA-aligned framing puts it.
    face = detect_faces(out)[0]
    assert abs(face.side - 128 / FACE_SCALE) < 0.15 * 128 / FACE_SCALE
    assert abs(face.left + face.side / 2 - 64) < 6
    assert abs(face.top + face.side / 2 - (64 + FACE_SHIFT_UP * face.side)) < 6


def test_crop_face_without_a_face_centre_crops_and_says_so():
    rocket = ASTRO.crop((380, 0, 512, 300))  # the rocket and sky: no face
    out, desc = crop_face(rocket, 32)
    assert desc.startswith("No face found: used the centre square")
    assert np.array_equal(np.asarray(out), np.asarray(resize_square(rocket, 32)))


def test_lfw_faces_found_and_non_faces_mostly_not():
    lfw = (skimage.data.lfw_subset() * 255).astype(np.uint8)  # 100 faces, then 100 non-faces, 25x25
    faces = [Image.fromarray(a).resize((64, 64), Image.BICUBIC) for a in lfw[:10]]
    others = [Image.fromarray(a).resize((64, 64), Image.BICUBIC) for a in lfw[100:110]]
    descs = [crop_face(im, 32)[1] for im in faces]
    assert sum(d.startswith("Face found") for d in descs) >= 8
    assert any("edge was extended" in d for d in descs)  # tight face crops need the frame padded
    assert sum(bool(detect_faces(im)) for im in others) <= 2


def test_prepare_upload_rotated_phone_photo(tmp_path):
    sideways = ASTRO.resize((256, 256)).rotate(90, expand=True)  # stored sideways, as a phone does
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(sideways, tmp_path / "phone.jpg", exif=exif, quality=90)
    out, desc = prepare_upload(path, 64)
    assert out.size == (64, 64) and desc.startswith("Face found")
    truth = detect_faces(ASTRO.resize((256, 256)))[0]
    found = detect_faces(load_upload(path))[0]
    centre = np.array([truth.left + truth.side / 2, truth.top + truth.side / 2])
    assert np.abs(np.array([found.left + found.side / 2, found.top + found.side / 2]) - centre).max() < 8
    with pytest.raises(UploadError):
        prepare_upload(io.BytesIO(b"GIF89a broken"), 64)
