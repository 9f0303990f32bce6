"""Background variants: ground-truth masks, rembg's real session path with a tiny ONNX model, offline errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers_onnx import bright_disc_image, write_brightness_model
from PIL import Image

from facelab.data import background as bg


@pytest.fixture
def rembg_home(tmp_path, monkeypatch):
    """An empty rembg home (REMBG_HOME; U2NET_HOME unset so it cannot win) with downloads off."""
    home = tmp_path / "rembg_home"
    home.mkdir()
    monkeypatch.delenv("U2NET_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("REMBG_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def _textured(h=48, w=40, seed=1):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3)).astype(np.uint8)


def test_variants_from_ground_truth_mask():
    img = _textured()
    mask = np.zeros(img.shape[:2], np.float32)
    mask[10:30, 8:28] = 1.0
    out = bg.variants(Image.fromarray(img), mask)
    assert set(out) == {"original", "grey", "blur", "mask"}
    assert all(p.size == (40, 48) for p in out.values())
    grey, blur = np.asarray(out["grey"]), np.asarray(out["blur"])
    fg, back = mask > 0.5, mask < 0.5
    assert np.array_equal(np.asarray(out["original"]), img)
    assert np.array_equal(grey[fg], img[fg]) and np.array_equal(blur[fg], img[fg])
    assert np.all(grey[back] == bg.GREY)
    # the blur keeps the background's colours but erases its detail
    assert blur[back].astype(float).std() < 0.3 * img[back].astype(float).std()
    assert abs(blur[back].mean() - img[back].mean()) < 12
    assert np.array_equal(np.asarray(out["mask"]), (mask * 255).astype(np.uint8))


def test_item_variants_take_tensors_and_need_a_mask():
    img = _textured()
    mask = np.zeros((1, 48, 40), np.float32)
    mask[0, :, 20:] = 1.0
    item = {"image": torch.from_numpy(img).permute(2, 0, 1).float() / 127.5 - 1.0,
            "mask": torch.from_numpy(mask)}
    grey = np.asarray(bg.item_variants(item)["grey"])
    assert np.all(grey[:, :20] == bg.GREY)
    assert np.abs(grey[:, 20:].astype(int) - img[:, 20:]).max() <= 1  # [-1,1] round trip
    with pytest.raises(ValueError, match="no ground-truth 'mask'.*rembg_mask"):
        bg.item_variants({"image": item["image"]})


def test_bad_inputs_are_refused_clearly():
    img = _textured()
    with pytest.raises(ValueError, match="does not match"):
        bg.variants(img, np.ones((10, 10), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        bg.variants(img.astype(np.float32), np.ones((48, 40), np.float32))
    with pytest.raises(ValueError, match="finite float mask"):
        bg.variants(img, np.full((48, 40), np.nan, np.float32))
    with pytest.raises(ValueError, match="unknown rembg model 'u2nett'"):
        bg.get_session("u2nett")
    with pytest.raises(ValueError, match="unknown background variant"):
        bg.check_variant("green")


def test_rembg_custom_session_masks_the_bright_foreground(rembg_home):
    model = write_brightness_model(rembg_home / "custom" / "bright.onnx")
    session = bg.get_session("u2net_custom", model_path=model)
    assert bg.get_session("u2net_custom", model_path=model) is session  # one reused session
    img, truth = bright_disc_image(120, 90)  # not square: rembg resizes to 320×320 and back
    mask = bg.rembg_mask(Image.fromarray(img), session)
    assert mask.shape == (120, 90) and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    pred = mask > 0.5
    assert (pred & truth).sum() / (pred | truth).sum() > 0.95
    # the same through variants: the dark textured background becomes flat grey
    grey = np.asarray(bg.variants(img, mask)["grey"])
    inner = truth & (mask > 0.99)
    assert np.all(np.abs(grey[mask < 0.01].astype(int) - bg.GREY) <= 1)
    assert np.abs(grey[inner].astype(int) - img[inner]).max() <= 1


def test_named_model_found_in_rembg_home_is_used_offline(rembg_home):
    write_brightness_model(rembg_home / "models" / "u2netp" / "u2netp.onnx")
    session = bg.get_session("u2netp")
    img, truth = bright_disc_image(64, 64, seed=3)
    assert ((bg.rembg_mask(img, session) > 0.5) == truth).mean() > 0.97


def test_custom_model_path_errors(rembg_home, tmp_path):
    outside = write_brightness_model(tmp_path / "elsewhere" / "m.onnx")
    with pytest.raises(ValueError, match="REMBG_HOME.*U2NET_HOME"):
        bg.get_session("u2net_custom", model_path=outside)
    with pytest.raises(FileNotFoundError, match="not found.*nope.onnx"):
        bg.get_session("u2net_custom", model_path=rembg_home / "nope.onnx")
    with pytest.raises(ValueError, match="needs model_path"):
        bg.get_session("u2net_custom")
    broken = rembg_home / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    with pytest.raises(RuntimeError, match="could not load rembg model"):
        bg.get_session("u2net_custom", model_path=broken)


def test_missing_named_model_offline_says_so(rembg_home):
    expected = rembg_home / "models" / "u2net" / "u2net.onnx"
    with pytest.raises(bg.RembgModelMissingError) as err:
        bg.get_session("u2net")
    msg = str(err.value)
    for needle in ("is missing", str(expected), "offline", "REMBG_HOME", "U2NET_HOME"):
        assert needle in msg
    assert not expected.exists()


def test_missing_named_model_failed_download_says_so(rembg_home, monkeypatch):
    # A real download attempt through rembg/pooch, made to fail without touching the network.
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    with pytest.raises(bg.RembgModelMissingError, match="Downloading it failed") as err:
        bg.get_session("u2netp", allow_download=True)
    assert "REMBG_HOME" in str(err.value)
    assert not (rembg_home / "models" / "u2netp" / "u2netp.onnx").exists()
