"""The image attribute classifier: learns synthfaces labels, predicts per image, round-trips, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from facelab.data.synthfaces import SynthFaces
from facelab.hub import BundleError
from facelab.metrics.attributes import accuracy_report, train_attribute_classifier
from facelab.models.classifier import AttributeClassifier, load_attribute_classifier
from training.train_classifier import main as train_classifier_main

WIDTHS = (16, 32, 64, 64)


@pytest.fixture(scope="module")
def trained() -> tuple[AttributeClassifier, dict]:
    torch.set_num_threads(1)
    data = SynthFaces(size=32, length=800, seed=0)
    return train_attribute_classifier(data, steps=60, batch=32, lr=3e-3, seed=0, max_eval=200, widths=WIDTHS)


def test_classifier_beats_the_majority_baseline_on_easy_attributes(trained):
    model, report = trained
    acc, base = report["held_out_accuracy"], report["majority_baseline"]
    assert set(acc) == set(model.attribute_names) == set(SynthFaces.attribute_names)
    assert report["n_eval"] == 160 and report["n_train"] == 640  # the 80/20 split of 800
    # hair colour and sex are large, high-contrast regions: learnt within a few dozen steps
    gains = {n: acc[n] - base[n] for n in ("Black_Hair", "Gray_Hair", "Male")}
    assert min(gains.values()) > 0.08, gains
    assert report["balanced_accuracy"]["Male"] > 0.65
    assert report["mean_accuracy"] > report["mean_majority_baseline"]


def test_predict_and_features_are_per_image(trained):
    model, _ = trained
    x = torch.stack([it["image"] for it in SynthFaces(size=32, length=8, seed=5).__getitems__(range(8))])
    probs, feats = model.predict(x), model.features(x)
    assert probs.shape == (8, len(model.attribute_names)) and feats.shape == (8, model.feature_dim)
    assert float(probs.min()) >= 0 and float(probs.max()) <= 1
    # GroupNorm: an image's prediction does not depend on its batch
    torch.testing.assert_close(model.predict(x[:3]), probs[:3], atol=1e-5, rtol=1e-4)
    # a larger input is resized to the training size, not rejected
    big = torch.nn.functional.interpolate(x, size=64, mode="bilinear", align_corners=False)
    assert model.predict(big).shape == probs.shape


def test_save_load_round_trip_and_pickles_refused(trained, tmp_path):
    model, _ = trained
    model.save_pretrained(tmp_path / "clf", safe_serialization=True)
    loaded = load_attribute_classifier(tmp_path / "clf")
    assert loaded.attribute_names == model.attribute_names
    assert tuple(loaded.config.widths) == WIDTHS and loaded.config.image_size == 32
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(loaded.predict(x), model.predict(x))
    (tmp_path / "clf" / "extra.bin").write_bytes(b"\x80\x04")
    with pytest.raises(BundleError, match="pickle"):
        load_attribute_classifier(tmp_path / "clf")
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_attribute_classifier(tmp_path / "nowhere")


def test_accuracy_report_known_values():
    labels = np.array([[1, 0], [1, 0], [1, 1], [0, 0]], np.float32)
    probs = np.array([[0.9, 0.2], [0.8, 0.1], [0.3, 0.7], [0.4, 0.6]], np.float32)
    rep = accuracy_report(labels, probs, ["a", "b"])
    assert rep["held_out_accuracy"] == {"a": 0.75, "b": 0.75}
    assert rep["balanced_accuracy"]["a"] == pytest.approx((2 / 3 + 1) / 2)
    assert rep["balanced_accuracy"]["b"] == pytest.approx((1 + 2 / 3) / 2)
    assert rep["majority_baseline"] == {"a": 0.75, "b": 0.75}


def test_classifier_needs_attribute_names():
    with pytest.raises(ValueError, match="attribute name"):
        AttributeClassifier(attribute_names=[])


def test_train_classifier_cli_writes_a_classifier_folder(tmp_path, capsys):
    out = tmp_path / "clf"
    rc = train_classifier_main(["--size", "16", "--length", "96", "--steps", "3", "--batch", "8",
                                "--max-eval", "16", "--out", str(out)])
    assert rc == 0
    meta = json.loads((out / "facelab.json").read_text())
    assert meta["kind"] == "attribute_classifier" and meta["dataset"] == "synthfaces"
    assert set(meta["accuracy"]["held_out_accuracy"]) == set(SynthFaces.attribute_names)
    assert (out / "diffusion_pytorch_model.safetensors").is_file()
    assert load_attribute_classifier(out).attribute_names == SynthFaces.attribute_names
    assert "| **mean** |" in capsys.readouterr().out
