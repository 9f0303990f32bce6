"""Bad dataset files (issue 21.8): real broken files on disk, each left out under its reason and counted."""

from __future__ import annotations

import io
import json
import logging
import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from facelab.cards import model_card
from facelab.data.celeba import CelebA
from facelab.data.datasets import ImageFolder
from facelab.data.hub_dataset import HubDataset
from training import prepare_data as prep

SIZE = 32  # the model's image_size in these tests: squares of 16..31 px are upsampled, under 16 left out


def noise(width: int = 40, height: int = 40, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A random image (it compresses badly, so a file cut in half loses pixel data)."""
    bands = len(Image.new(mode, (1, 1)).getbands())
    arr = np.random.default_rng(seed).integers(0, 256, (height, width, bands), dtype=np.uint8)
    return Image.fromarray(arr.squeeze(-1) if bands == 1 else arr, mode)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def truncated_png() -> bytes:
    data = png_bytes(noise())
    return data[: len(data) // 2]


def oversized_png() -> bytes:
    """A valid 1x1 PNG whose header claims 20000x20000: PIL refuses it as a decompression bomb."""
    data = bytearray(png_bytes(Image.new("RGB", (1, 1))))
    data[16:24] = struct.pack(">II", 20000, 20000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


BAD_FILES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "empty": ("empty.png", lambda: b""),
    "not_an_image": ("notes.png", lambda: b"a text file saved with a .png suffix\n"),
    "truncated": ("cut.png", truncated_png),
    "unreadable": ("bomb.png", oversized_png),
    "degenerate": ("pixel.png", lambda: png_bytes(Image.new("RGB", (1, 1), (200, 30, 30)))),
    "too_small": ("tiny.png", lambda: png_bytes(noise(8, 8))),
    "transparent": ("clear.png", lambda: png_bytes(Image.new("RGBA", (40, 40), (255, 0, 0, 0)))),
}


def good_folder(root: Path, n: int = 2) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        noise(seed=k).save(root / f"good{k}.png")
    return root


@pytest.mark.parametrize("reason", list(BAD_FILES))
def test_each_bad_file_is_left_out_under_its_reason(tmp_path, reason):
    root = good_folder(tmp_path / "faces")
    name, make = BAD_FILES[reason]
    (root / name).write_bytes(make())
    ds = ImageFolder(root, size=SIZE)
    assert len(ds) == 2 and ds.skipped_by_reason == {reason: 1}
    assert [Path(f).name for f in ds.skipped_files] == [name]
    items = [ds[i] for i in range(len(ds))]  # the kept files load: nothing more is skipped on load
    assert all(item["image"].shape == (3, SIZE, SIZE) for item in items) and ds.skipped == 1


def test_totals_by_reason_are_logged_reported_and_json_ready(tmp_path, caplog):
    root = good_folder(tmp_path / "faces", n=3)
    for name, make in BAD_FILES.values():
        (root / name).write_bytes(make())
    noise(20, 24).save(root / "small_ok.png")  # 20 px: kept, upsampled
    with caplog.at_level(logging.WARNING, logger="facelab.data.datasets"):
        ds = ImageFolder(root, size=SIZE)
    report = ds.file_report()
    assert report == {"scanned": 11, "used": 4, "upsampled": 1, "image_size": SIZE, "min_side": 16,
                      "skipped": {"empty": 1, "not_an_image": 1, "truncated": 1, "unreadable": 1,
                                  "degenerate": 1, "too_small": 1, "transparent": 1}}
    assert json.loads(json.dumps(report)) == report
    summary = ds.file_summary()
    assert "11 files scanned, 4 used" in summary and "1 truncated" in summary and "1 upsampled" in summary
    # one warning line for the whole scan, with every reason in it
    messages = [r.getMessage() for r in caplog.records]
    lines = [m for m in messages if "left out" in m]
    assert len(lines) == 1 and "7 of 11 images left out" in lines[0] and "1 transparent" in lines[0]
    assert any("1 of 11 images are under 32 px and are upsampled" in m for m in messages)


def test_size_rule_boundaries(tmp_path):
    root = tmp_path / "faces"
    root.mkdir()
    sizes = {"a_15x40": (15, 40), "b_16x40": (16, 40), "c_31x31": (31, 31), "d_32x32": (32, 32),
             "e_64x48": (64, 48)}
    for name, (w, h) in sizes.items():
        noise(w, h).save(root / f"{name}.png")
    ds = ImageFolder(root, size=SIZE)
    assert [f.stem for f in ds.files] == ["b_16x40", "c_31x31", "d_32x32", "e_64x48"]
    assert ds.skipped_by_reason == {"too_small": 1} and ds.upsampled == 2
    assert {Path(n).stem: v for n, v in ds.file_status.items()} == {
        "a_15x40": "too_small", "b_16x40": "upsampled", "c_31x31": "upsampled"}
    assert ds[0]["image"].shape == (3, SIZE, SIZE)  # upsampled to the model's size
    # with a crop, the crop is the square that is resized; one larger than the image cannot be taken
    cropped = ImageFolder(root, size=SIZE, crop=40)
    assert [f.stem for f in cropped.files] == ["e_64x48"] and cropped.skipped_by_reason == {"too_small": 4}


def test_complete_files_are_not_mistaken_for_truncated(tmp_path):
    root = tmp_path / "faces"
    root.mkdir()
    whole = png_bytes(noise(seed=1))
    (root / "no_end_chunk.png").write_bytes(whole[:-12])  # IEND lost, every pixel there
    jpeg = io.BytesIO()
    noise(seed=2).save(jpeg, "JPEG")
    (root / "trailer.jpg").write_bytes(jpeg.getvalue() + b"\x00\x00camera trailer")  # bytes after the end marker
    noise(seed=3).save(root / "photo.webp")
    half = np.zeros((40, 40, 4), np.uint8)
    half[:, :20] = (0, 200, 0, 255)  # left half opaque green, right half transparent
    Image.fromarray(half, "RGBA").save(root / "cutout.png")
    ds = ImageFolder(root, size=SIZE)
    assert len(ds) == 4 and ds.skipped == 0
    cutout = ds[[f.name for f in ds.files].index("cutout.png")]["image"]
    assert cutout[1, :, :12].min() > 0.5 and cutout[:, :, 20:].abs().max() < 0.02  # transparent -> grey


def test_exotic_modes_are_converted_and_kept(tmp_path):
    root = tmp_path / "faces"
    root.mkdir()
    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(root / "a_grey16.png")
    Image.new("RGB", (40, 40), (255, 0, 0)).convert("P", palette=Image.Palette.ADAPTIVE).save(root / "b_palette.png")
    Image.new("CMYK", (40, 40), (0, 255, 255, 0)).save(root / "c_cmyk.jpg", quality=95)
    Image.new("LA", (40, 40), (102, 255)).save(root / "d_la.png")
    Image.new("1", (40, 40), 1).save(root / "e_bilevel.png")
    ds = ImageFolder(root, size=SIZE)
    modes = {f.name: Image.open(root / f).mode for f in ds.files}
    assert modes == {"a_grey16.png": "I;16", "b_palette.png": "P", "c_cmyk.jpg": "CMYK", "d_la.png": "LA",
                     "e_bilevel.png": "1"}
    assert ds.skipped == 0
    means = [ds[i]["image"].mean(dim=(1, 2)).tolist() for i in range(len(ds))]
    expected = [(1, 1, 1), (1, -1, -1), (1, -1, -1), (102 / 127.5 - 1,) * 3, (1, 1, 1)]
    assert np.allclose(means, expected, atol=0.03)


def test_no_usable_file_is_an_error_naming_folder_and_counts(tmp_path):
    root = tmp_path / "all_bad"
    root.mkdir()
    (root / "cut.png").write_bytes(truncated_png())
    Image.new("RGB", (1, 1)).save(root / "pixel.png")
    with pytest.raises(ValueError) as err:
        ImageFolder(root, size=SIZE)
    text = str(err.value)
    assert str(root) in text and "none of the 2 images" in text and "1 truncated, 1 degenerate" in text


def test_the_rule_holds_on_load_without_the_scan(tmp_path):
    root = good_folder(tmp_path / "faces", n=1)
    Image.new("RGB", (1, 1), (255, 0, 0)).save(root / "a_pixel.png")
    Image.new("RGBA", (40, 40), (255, 0, 0, 0)).save(root / "b_clear.png")
    ds = ImageFolder(root, size=SIZE, check=False)
    assert len(ds) == 3 and ds.skipped == 0 and ds.scanned == 0
    good = ds[2]["image"]
    for i in range(3):  # the refused files never reach a batch: the good one stands in
        assert np.array_equal(ds[i]["image"].numpy(), good.numpy())
    assert ds.skipped_by_reason == {"degenerate": 1, "transparent": 1}


def test_hub_dataset_cells_are_scanned_by_the_same_rule(tmp_path):
    from datasets import Dataset, Features, Image as HFImage, Value

    good = io.BytesIO()
    noise().save(good, "JPEG")
    cells = [truncated_png(), good.getvalue(), png_bytes(Image.new("RGB", (1, 1))),
             png_bytes(Image.new("RGBA", (40, 40), (0, 0, 0, 0))), b"<html>not found</html>", b""]
    features = Features({"image": HFImage(), "label": Value("int64")})
    Dataset.from_dict({"image": [{"bytes": c, "path": None} for c in cells], "label": [0, 1, 0, 0, 0, 0]},
                      features=features).save_to_disk(str(tmp_path / "hub"))
    ds = HubDataset(tmp_path / "hub", size=SIZE)
    assert len(ds) == 1 and ds.labels.tolist() == [[1.0]] and ds[0]["attributes"].tolist() == [1.0]
    assert ds.skipped_by_reason == {"empty": 1, "not_an_image": 1, "truncated": 1, "degenerate": 1,
                                    "transparent": 1}
    assert ds.skipped_files[0].endswith("hub[0]") and ds.file_report()["scanned"] == 6


def test_celeba_scan_counts_truncated_and_missing(tmp_path):
    images = tmp_path / "celeba" / "img_align_celeba"
    images.mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, 5)]
    for k, name in enumerate(names):
        noise(178, 218, seed=k).save(images / name, quality=90)
    data = (images / names[1]).read_bytes()
    (images / names[1]).write_bytes(data[: len(data) // 2])
    (images / names[2]).unlink()
    (tmp_path / "celeba" / "list_attr_celeba.txt").write_text(
        "4\nSmiling\n" + "".join(f"{n} {1 if k % 2 else -1}\n" for k, n in enumerate(names)))
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text("".join(f"{n} 0\n" for n in names))
    ds = CelebA(tmp_path / "celeba", split="train", size=SIZE)
    assert [f.name for f in ds.files] == [names[0], names[3]] and ds.labels[:, 0].tolist() == [0.0, 1.0]
    assert ds.skipped_by_reason == {"missing": 1, "truncated": 1} and ds.file_report()["scanned"] == 4


def test_prepare_data_skips_by_the_same_reasons(tmp_path):
    root = tmp_path / "faces"
    root.mkdir()
    for reason in ("not_an_image", "truncated", "degenerate", "transparent"):
        name, make = BAD_FILES[reason]
        (root / name).write_bytes(make())

    def no_session():
        raise AssertionError("rembg is not needed when every image is refused")

    report = prep.prepare("folder", root, session=no_session, progress=False)
    assert {p.name: r for p, r in report.skipped.items()} == {
        "notes.png": "not_an_image", "cut.png": "truncated", "pixel.png": "degenerate", "clear.png": "transparent"}
    assert report.skipped_by_reason() == {"not_an_image": 1, "truncated": 1, "degenerate": 1, "transparent": 1}
    assert not report.written


def test_card_shows_the_files_of_a_real_scan(tmp_path):
    root = good_folder(tmp_path / "faces", n=2)
    (root / "cut.png").write_bytes(truncated_png())
    (root / "notes.png").write_bytes(b"not an image")
    noise(20, 20).save(root / "small.png")
    ds = ImageFolder(root, size=SIZE)
    meta = {"kind": "vae", "dataset": "folder", "image_size": SIZE, "data_files": ds.file_report()}
    card = model_card(meta)
    assert "| data files | 5 scanned, 3 used; 1 upsampled (short side 16–31 px) |" in card
    assert "| skipped files | 1 not an image, 1 truncated |" in card
    assert "skipped files" not in model_card({k: v for k, v in meta.items() if k != "data_files"})


def test_a_training_run_logs_saves_and_cards_the_counts(tmp_path, capsys):
    """train.py on a folder with bad files: the totals in its log, run folder, facelab.json and card."""
    from tests.test_train import tiny_args
    from training.train import main

    root = tmp_path / "faces"
    root.mkdir()
    for i in range(6):
        noise(seed=i).save(root / f"good{i}.png")
    for reason in ("truncated", "transparent"):
        name, make = BAD_FILES[reason]
        (root / name).write_bytes(make())
    out = tmp_path / "run"
    args = tiny_args("vae", out, 2, "data.name=folder", f"data.root={root}", "data.image_size=32",
                     "train.report_to=none")
    assert main(args) == 0
    assert "1 truncated" in capsys.readouterr().out
    saved = json.loads((out / "data_files.json").read_text())
    meta = json.loads((out / "bundle" / "facelab.json").read_text())
    assert saved == meta["data_files"]
    assert saved["skipped"] == {"truncated": 1, "transparent": 1} and saved["scanned"] == 8
    assert "skipped files" in (out / "bundle" / "README.md").read_text()
