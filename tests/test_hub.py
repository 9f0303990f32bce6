"""facelab.hub bundles on disk: save/load round trip, and every way a bundle can be refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from facelab.hub import META_FILE, WEIGHTS_FILE, BundleError, load_bundle, push_bundle, save_bundle
from facelab.models import build_model

TINY_VAE = {"image_size": 16, "latent_dim": 4, "base_channels": 8, "max_channels": 16}


@pytest.fixture(scope="module")
def model():
    """A tiny real VAE with non-default weights (so a load that silently re-initialises would show)."""
    torch.manual_seed(1)
    vae = build_model("vae", TINY_VAE)
    with torch.no_grad():
        for p in vae.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return vae.eval()


@pytest.fixture
def bundle(tmp_path, model) -> Path:
    """A freshly saved bundle folder."""
    samples = Image.new("RGB", (16, 16), (10, 20, 30))
    return save_bundle(model, tmp_path / "tiny", {"name": "tiny-vae", "dataset": "synthfaces",
                                                  "attribute_names": ["Male", "Smiling"]},
                       samples=samples, card="# tiny\n")


def _samples(m, seed: int = 7) -> torch.Tensor:
    with torch.no_grad():
        return m.sample(4, generator=torch.Generator().manual_seed(seed))


def test_round_trip_gives_identical_samples(bundle, model):
    names = {p.name for p in bundle.iterdir()}
    assert {"config.json", WEIGHTS_FILE, META_FILE, "samples.png", "README.md"} <= names
    loaded = load_bundle(str(bundle))
    assert loaded.name == "tiny-vae" and loaded.attribute_names == ["Male", "Smiling"]
    assert loaded.meta["kind"] == "vae" and loaded.meta["image_size"] == 16
    assert type(loaded.model) is type(model) and not loaded.model.training
    out = _samples(loaded.model)
    assert out.shape == (4, 3, 16, 16)
    assert torch.equal(out, _samples(model))
    assert not torch.equal(out, _samples(model, seed=8))  # the seed matters, so equality means something
    with torch.no_grad():
        x = torch.rand(2, 3, 16, 16) * 2 - 1
        assert torch.equal(loaded.model.encode(x)[0], model.encode(x)[0])


@pytest.mark.parametrize("name", ["weights.pkl", "model.bin", "extra.pt", "probes/old.pth"])
def test_pickles_are_refused(bundle, name):
    target = bundle / name
    target.parent.mkdir(exist_ok=True)
    torch.save({"x": torch.zeros(1)}, target)
    with pytest.raises(BundleError, match=rf"pickle-format files \({name}\).*refuses pickles"):  # named by path
        load_bundle(str(bundle))
    with pytest.raises(BundleError, match="pickle"):
        push_bundle(bundle, "someone/tiny")


def test_missing_metadata(bundle):
    (bundle / META_FILE).unlink()
    with pytest.raises(BundleError, match=r"missing facelab\.json \(not a facelab bundle\)"):
        load_bundle(str(bundle))


def test_broken_metadata_and_unknown_kind(bundle):
    (bundle / META_FILE).write_text("{not json")
    with pytest.raises(BundleError, match=r"facelab\.json is not valid JSON"):
        load_bundle(str(bundle))
    (bundle / META_FILE).write_text(json.dumps({"kind": "vqgan"}))
    with pytest.raises(BundleError, match=r"unknown model kind 'vqgan'; known: vae, cvae"):
        load_bundle(str(bundle))


def test_missing_weights(bundle):
    (bundle / WEIGHTS_FILE).unlink()
    with pytest.raises(BundleError, match=rf"missing weights file {WEIGHTS_FILE}"):
        load_bundle(str(bundle))


def test_wrong_shapes(bundle):
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["base_channels"] = 12  # a wider network than the weights were saved from
    (bundle / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match=r"(?s)weights do not load into VAE:.*size mismatch for encoder"):
        load_bundle(str(bundle))


def test_not_a_folder_nor_a_repo_id(tmp_path):
    with pytest.raises(BundleError, match="no such folder, and not a Hub repo id"):
        load_bundle(str(tmp_path / "nowhere"))


def _offline(monkeypatch) -> None:
    """HF_HUB_OFFLINE=1, also where huggingface_hub read it at import (its constants module)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_hub_id_offline_and_not_cached(tmp_path, monkeypatch):
    _offline(monkeypatch)
    with pytest.raises(BundleError, match=r"'someone/never-downloaded@v2'.*HF_HUB_OFFLINE=1"):
        load_bundle("someone/never-downloaded@v2", cache_dir=tmp_path / "hub-cache")


def test_push_offline_keeps_the_folder(bundle, monkeypatch):
    _offline(monkeypatch)
    before = sorted(p.relative_to(bundle) for p in bundle.rglob("*"))
    with pytest.raises(BundleError, match=rf"HF_HUB_OFFLINE.*the bundle is kept at {bundle}"):
        push_bundle(bundle, "someone/tiny", token="hf_fake_token_for_offline_test")
    assert sorted(p.relative_to(bundle) for p in bundle.rglob("*")) == before
    assert torch.equal(_samples(load_bundle(str(bundle)).model), _samples(load_bundle(str(bundle)).model))


def test_copy_of_a_bundle_loads_anywhere(bundle, tmp_path, model):
    moved = Path(shutil.copytree(bundle, tmp_path / "elsewhere" / "copy"))
    assert torch.equal(_samples(load_bundle(str(moved)).model), _samples(model))


def test_halved_weights_load_as_fp32_and_draw_the_same_faces(bundle, model):
    from facelab.hub import halve_weights

    before = (bundle / WEIGHTS_FILE).stat().st_size
    saved = halve_weights(bundle)
    assert saved > 0.4 * before and (bundle / WEIGHTS_FILE).stat().st_size == before - saved
    loaded = load_bundle(str(bundle))
    assert loaded.meta["weights_dtype"] == "float16"
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    assert torch.allclose(_samples(loaded.model), _samples(model), atol=5e-3)
