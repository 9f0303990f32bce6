"""The shared FID protocol: held-out reals, disjoint floor set, resolution handling, metrics.json merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from facelab.data.build import build_dataset
from facelab.metrics import fid_protocol
from facelab.metrics.fid_protocol import generated_images, metric_keys, protocol_scores, real_images

SIZE = 16


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Real-set features cached in this test's folder, and no in-memory copy from another test."""
    monkeypatch.setenv("FACELAB_CACHE", str(tmp_path / "cache"))
    fid_protocol.real_features.cache_clear()
    yield
    fid_protocol.real_features.cache_clear()


def test_real_sets_are_held_out_disjoint_and_of_the_asked_variant():
    a, labels = real_images(SIZE, "original", 4, 0)
    b, _ = real_images(SIZE, "original", 4, 4)
    grey, _ = real_images(SIZE, "grey", 4, 0)
    train = build_dataset("synthfaces", size=SIZE, split="train", length=4).__getitems__(range(4))
    assert a.shape == (4, 3, SIZE, SIZE) and labels.shape[0] == 4
    assert not torch.equal(a, b)  # the floor set is not the comparison set
    assert not torch.equal(a, torch.stack([it["image"] for it in train]))  # never training faces
    assert not torch.equal(a, grey)
    # grey variant: the corners (background) are one flat grey, unlike the original's backgrounds
    corner = grey[:, :, 0, 0]
    assert torch.allclose(corner, corner[:1].expand_as(corner), atol=1e-6)


def test_generated_images_are_seeded_and_area_downsampled():
    from facelab.models.dcgan import DCGAN

    torch.manual_seed(0)
    model = DCGAN(image_size=32, nz=8, ngf=8, ndf=8).eval()
    full = generated_images(model, 6, 32, chunk=4)
    again = generated_images(model, 6, 32, chunk=4)
    other = generated_images(model, 6, 32, chunk=4, seed=1)
    small = generated_images(model, 6, 16, chunk=4)
    assert full.shape == (6, 3, 32, 32) and torch.equal(full, again) and not torch.equal(full, other)
    assert torch.allclose(small, torch.nn.functional.avg_pool2d(full, 2), atol=1e-5)
    with pytest.raises(ValueError, match="above the model"):
        generated_images(model, 2, 64)


def test_untrained_generator_scores_far_above_the_data_floor():
    from facelab.models.dcgan import DCGAN

    torch.manual_seed(0)
    model = DCGAN(image_size=SIZE, nz=8, ngf=8, ndf=8).eval()
    s = protocol_scores(model, "original", SIZE, n=12)
    assert s["resolution"] == SIZE and s["n"] == 12 and s["kid_subset_size"] == 6
    assert s["fid"] > 2 * s["fid_floor"] > 0
    assert s["kid"] > s["kid_floor"]
    assert s["kid_std"] > 0  # subsets smaller than the set: the spread means something
    keys = metric_keys(s, model_size=SIZE)
    assert set(keys) == {"fid_12", "kid_12", "kid_12_std", "fid_floor_12"}
    assert set(metric_keys({**s, "resolution": 8, "temperature": 0.7}, SIZE)) == {
        "fid_12_8px_T0.7", "kid_12_8px_T0.7", "kid_12_std_8px_T0.7", "fid_floor_12_8px_T0.7"}
    # an HVAE scored at one temperature per level keeps them all in its keys
    assert "fid_12_T1-0.8-0.3" in metric_keys({**s, "temperature": [1.0, 0.8, 0.3]}, SIZE)
    assert "fid_12" in metric_keys({**s, "temperature": 1}, SIZE)


def test_script_merges_protocol_scores_into_metrics_and_card(tmp_path):
    from training.fid_protocol import main as fid_main
    from training.train import main as train_main

    out = tmp_path / "dc"
    assert train_main(["--set", "model.kind=dcgan", "model.params.nz=8", "model.params.ngf=8",
                       "model.params.ndf=8", "data.image_size=16", "data.length=64", "train.max_steps=2",
                       "train.batch_size=8", f"train.output_dir={out}", "train.report_to=none",
                       "train.num_samples=4"]) == 0
    bundle = out / "bundle"
    (bundle / "metrics.json").write_text(json.dumps({"bundle": str(bundle), "kind": "dcgan",
                                                     "metrics": {"earlier": 1.5}, "details": {}, "notes": {}}))
    assert fid_main([str(bundle), "--n", "8", "--write"]) == 0
    metrics = json.loads((bundle / "metrics.json").read_text())
    assert metrics["metrics"]["earlier"] == 1.5  # earlier metrics are kept
    assert metrics["metrics"]["fid_8"] > metrics["metrics"]["fid_floor_8"] > 0
    assert metrics["details"]["fid_protocol"]["fid_8"]["background"] == "original"
    meta = json.loads((bundle / "facelab.json").read_text())
    assert meta["metrics"]["fid_8"] == pytest.approx(metrics["metrics"]["fid_8"])
    assert "fid_8" in (bundle / "README.md").read_text()
    assert fid_main([str(Path(tmp_path) / "missing")]) == 2


def test_real_features_are_cached_on_disk_and_a_damaged_cache_is_recomputed():
    a, b, labels = fid_protocol.real_features(SIZE, "grey", 3)
    (path,) = fid_protocol.cache_dir().glob("real_16px_grey_n3_*.safetensors")
    fid_protocol.real_features.cache_clear()
    a2, b2, labels2 = fid_protocol.real_features(SIZE, "grey", 3)  # from disk
    assert torch.equal(a, a2) and torch.equal(b, b2) and torch.equal(labels, labels2)
    assert a.shape == (3, 2048) and not torch.equal(a, b)
    path.write_bytes(b"not safetensors")
    fid_protocol.real_features.cache_clear()
    a3, _, _ = fid_protocol.real_features(SIZE, "grey", 3)
    assert torch.allclose(a, a3, atol=1e-4) and path.stat().st_size > 1000


def test_temperatures_on_the_command_line_are_one_value_or_one_per_level():
    from training.fid_protocol import parse_args

    args = parse_args(["b", "--temperatures", "0.6", "1,0.8,0.3"])
    assert args.temperatures == [0.6, [1.0, 0.8, 0.3]]
