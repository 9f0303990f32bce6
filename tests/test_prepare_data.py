"""training/prepare_data.py on a small real folder with rembg's u2net_custom session (tiny ONNX model)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from helpers_onnx import bright_disc_image, write_brightness_model
from PIL import Image

from facelab.data import background as bg
from training import prepare_data as prep

GOOD = ["a.jpg", "b.png", "d.jpg", "sub/c.png"]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A dataset folder (photo crops, a synthetic disc, one corrupted file, a label file) + model."""
    monkeypatch.delenv("REMBG_HOME", raising=False)
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "u2net_home"))
    model = write_brightness_model(tmp_path / "u2net_home" / "bright.onnx")
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    astro = skimage.data.astronaut()
    Image.fromarray(astro[0:200, 100:260]).save(root / "a.jpg", quality=95)
    Image.fromarray(astro[250:400, 300:480]).save(root / "b.png")
    Image.fromarray(astro).resize((96, 96)).save(root / "d.jpg", quality=95)
    Image.fromarray(bright_disc_image(80, 60)[0]).save(root / "sub" / "c.png")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10)
    (root / "labels.json").write_text("{}")
    return root, model


def _outputs(root: Path, variants=("mask", "grey", "blur")) -> dict[Path, int]:
    """Every expected output -> its mtime in ns."""
    return {p: p.stat().st_mtime_ns for rel in GOOD for v in variants
            for p in [prep.variant_path(root, Path(rel), v)]}


def _run(root, model, *extra) -> int:
    return prep.main(["--dataset", "folder", "--root", str(root), "--rembg-model-path", str(model), *extra])


def test_writes_masks_and_variants_and_skips_the_broken_file(folder, capsys):
    root, model = folder
    assert _run(root, model) == 0
    out = capsys.readouterr().out
    assert "5 images:" in out  # corrupt.jpg counts, the label file does not
    # corrupt.jpg starts like a JPEG whose first segment runs past the end of the file
    assert "12 files written" in out and "1 skipped (1 truncated)" in out and "skipped (truncated):" in out
    assert "corrupt.jpg" in out
    assert not (root / "facelab_background" / "original").exists()  # default: grey blur only
    for rel in GOOD:
        src = np.asarray(Image.open(root / rel).convert("RGB"))
        mask = np.asarray(Image.open(prep.variant_path(root, Path(rel), "mask")))
        grey = np.asarray(Image.open(prep.variant_path(root, Path(rel), "grey")))
        blur = np.asarray(Image.open(prep.variant_path(root, Path(rel), "blur")))
        assert mask.shape == src.shape[:2] and grey.shape == blur.shape == src.shape  # own resolution
        back, fore = mask == 0, mask == 255
        assert back.any() and fore.any()
        assert np.abs(grey[back].astype(int) - bg.GREY).max() <= 1
        assert np.array_equal(grey[fore], src[fore]) and np.array_equal(blur[fore], src[fore])
    truth = bright_disc_image(80, 60)[1]
    pred = np.asarray(Image.open(prep.variant_path(root, Path("sub/c.png"), "mask"))) > 127
    assert (pred & truth).sum() / (pred | truth).sum() > 0.95


def test_rerun_rewrites_nothing_and_a_partial_run_completes_only_the_missing(folder, capsys):
    root, model = folder
    assert _run(root, model, "--limit", "2") == 0  # an interrupted run: a.jpg, b.png done
    first = {p: t for p, t in _outputs_if_present(root).items()}
    assert len(first) == 6
    assert _run(root, model) == 0
    done = _outputs(root)
    assert all(done[p] == t for p, t in first.items())  # the first two untouched
    assert "6 files written, 2 already complete" in capsys.readouterr().out

    assert _run(root, model) == 0
    assert _outputs(root) == done
    assert "0 files written, 4 already complete, 1 skipped" in capsys.readouterr().out

    # Lose a few outputs, as a kill between files would; leave a half-written temp file behind.
    c_mask = prep.variant_path(root, Path("sub/c.png"), "mask")
    c_blur = prep.variant_path(root, Path("sub/c.png"), "blur")
    kept_mask = c_mask.read_bytes()
    lost = [prep.variant_path(root, Path("a.jpg"), "grey"), c_mask, c_blur]
    for p in lost:
        p.unlink()
    (c_blur.parent / f".{c_blur.name}.partial").write_bytes(b"half a png")
    assert _run(root, model) == 0
    assert "3 files written, 2 already complete" in capsys.readouterr().out
    again = _outputs(root)
    assert all(again[p] == t for p, t in done.items() if p not in lost)
    assert c_mask.read_bytes() == kept_mask  # deterministic: the same mask again
    assert not list(root.rglob("*.partial"))


def _outputs_if_present(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (root / "facelab_background").rglob("*.png")}


def test_one_session_and_none_for_a_finished_dataset(folder):
    root, model = folder
    calls = []

    def session():
        calls.append(1)
        return bg.get_session("u2net_custom", model_path=model)

    report = prep.prepare("folder", root, session=session, progress=False)
    assert len(calls) == 1 and len(report.written) == 12
    assert [str(p) for p in report.unreadable] == ["corrupt.jpg"]
    report = prep.prepare("folder", root, session=session, progress=False)
    assert len(calls) == 1 and report.complete == 4 and not report.written


def test_size_crops_and_refuses_to_mix_settings(folder, capsys):
    root, model = folder
    assert _run(root, model, "--size", "32", "--variants", "original", "grey") == 0
    outs = _outputs(root, ("mask", "original", "grey"))
    assert {Image.open(p).size for p in outs} == {(32, 32)}
    mtimes = _outputs_if_present(root)
    assert _run(root, model, "--size", "64", "--variants", "grey") == 2
    assert "other settings" in capsys.readouterr().err
    assert _outputs_if_present(root) == mtimes  # nothing lost or touched
    assert _run(root, model, "--size", "64", "--variants", "original", "grey", "--overwrite") == 0
    assert {Image.open(p).size for p in _outputs(root, ("mask", "original", "grey"))} == {(64, 64)}


def test_bad_input_errors(folder, tmp_path, monkeypatch, capsys):
    root, model = folder
    assert prep.main(["--dataset", "celeba", "--root", str(root), "--rembg-model-path", str(model)]) == 2
    assert "img_align_celeba" in capsys.readouterr().err
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert prep.main(["--dataset", "folder", "--root", str(root), "--rembg-model", "u2netp"]) == 2
    err = capsys.readouterr().err
    assert "u2netp" in err and "missing" in err and "U2NET_HOME" in err
    assert not (root / "facelab_background" / "mask").exists()  # nothing written
    with pytest.raises(SystemExit):
        prep.main(["--dataset", "folder", "--root", str(root), "--size", "0"])


def test_runs_as_a_script():
    script = Path(prep.__file__)
    res = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                         cwd=script.parents[1], timeout=60)
    assert res.returncode == 0 and "--rembg-model-path" in res.stdout


def test_outputs_load_through_build_dataset(folder):
    root, model = folder
    assert _run(root, model, "--limit", "4") == 0  # a.jpg b.png corrupt.jpg d.jpg; sub/c.png left out
    from facelab.data.build import build_dataset

    ds = build_dataset("folder", str(root), size=32, split="all", background="grey", labels="none")
    assert len(ds) == 3  # the corrupt file and the image without variants are not items
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["mask"].shape == (1, 32, 32)
    back = item["mask"][0] < 0.01
    assert back.any()
    grey = (item["image"][:, back] + 1) * 127.5
    # Lanczos (image) and bilinear (mask) resampling differ a little at the mask's edge
    assert (grey - bg.GREY).abs().mean() < 1.0 and (grey - bg.GREY).abs().median() <= 1
