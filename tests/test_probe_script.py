"""training/probe.py end to end on bundles written by training/train.py: tables, files, cache, facelab.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from facelab.data.synthfaces import ATTRIBUTE_NAMES
from facelab.hub import load_bundle
from facelab.models.classifier import AttributeClassifier
from facelab.probes.conditional import conditional_sample
from training.probe import main as probe_main
from training.train import main as train_main

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"
TINY = {
    "vae": ["model.params.latent_dim=6", "model.params.base_channels=8", "model.params.max_channels=16"],
    "hvae": ["model.params.width=16", "model.params.group_resolutions=[1,4,8]", "model.params.latent_channels=4"],
}


def _train(kind: str, out: Path, steps: int) -> Path:
    rc = train_main(["--config", str(CONFIGS / f"{kind}_synthfaces64.yaml"), "--set", *TINY[kind],
                     "data.image_size=16", "data.length=256", f"train.output_dir={out}",
                     f"train.max_steps={steps}", "train.batch_size=16", "train.log_every=100",
                     "train.sample_every=1000", "train.checkpoint_every=1000", "train.num_samples=4",
                     "train.report_to=none"])
    assert rc == 0
    return out / "bundle"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe_bundles")
    torch.manual_seed(0)
    return {"vae": _train("vae", root / "vae", 12), "hvae": _train("hvae", root / "hvae", 4)}


def _run(bundle: Path, cache: Path, *extra: str) -> int:
    return probe_main([str(bundle), "--n", "160", "--cache-dir", str(cache), "--pca-components", "5", *extra])


def test_vae_probes_are_written_and_load_back(bundles, tmp_path, capsys):
    assert _run(bundles["vae"], tmp_path / "cache") == 0
    out = capsys.readouterr().out
    assert "| accuracy (svm, per level) | z | majority |" in out and "| dimensions | 6 |" in out
    assert "| Male |" in out and "mlp" in out and "restricted" in out
    assert (bundles["vae"] / "probes" / "probes.safetensors").is_file()
    assert not list(bundles["vae"].rglob("*.pkl"))
    bundle = load_bundle(str(bundles["vae"]))
    probes = bundle.extras["probes"]
    table = probes.table("svm/per_level")
    probed = probes.meta["attributes"]
    assert table.columns == ["z"] and table.dims == [6] and table.attributes == probed
    assert table.accuracy.shape == (len(probed), 1) and set(probed) <= set(ATTRIBUTE_NAMES)
    assert (table.n_train, table.n_test) == (128, 32)
    assert probes.table("mlp/all").columns == ["z"]
    # restricted to synthfaces' non-young faces: fewer faces, and Young itself is constant there
    restricted = probes.table("age/svm/per_level")
    assert restricted.n_train + restricted.n_test == probes.meta["restriction"]["n"] < 160
    assert "Young" not in restricted.attributes
    assert probes.pca("pca/z").components.shape == (5, 6)
    assert set(probes.directions("svm_normal/z")) == set(probed)
    assert f"{probed[0]}|{probed[1]}" in probes.directions("conditional/z")
    meta = json.loads((bundles["vae"] / "facelab.json").read_text())
    assert meta["probes"]["tables"]["svm/per_level"]["attributes"] == probed
    assert meta["kind"] == "vae" and meta["probes"]["n"] == 160


def test_hvae_tables_have_a_column_per_level_and_per_prefix(bundles, tmp_path, capsys):
    assert _run(bundles["hvae"], tmp_path / "cache", "--mlp", "none") == 0
    out = capsys.readouterr().out
    assert "| accuracy (svm, cumulative) |" in out and "active units" in out
    probes = load_bundle(str(bundles["hvae"])).extras["probes"]
    per, cum = probes.table("svm/per_level"), probes.table("svm/cumulative")
    assert per.columns == ["z0", "z1", "z2"] and per.dims == [4, 64, 256]
    assert len(cum.columns) == 3 and cum.dims == [4, 68, 324]
    assert per.accuracy.shape == cum.accuracy.shape == (len(probes.meta["attributes"]), 3)
    assert cum.probe("Male", 2).levels == (0, 1, 2) and per.probe("Male", 2).levels == (2,)
    assert "mlp/all" not in probes.meta["tables"]
    for level, d in zip(["z0", "z1", "z2"], [4, 64, 256]):
        assert probes.directions(f"centroid/{level}")["Male"].shape == (d,)
        assert probes.pca(f"pca/{level}").mean.shape == (d,)
    assert ((per.accuracy >= 0) & (per.accuracy <= 1)).all()


def test_second_run_reads_the_latent_cache(bundles, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert _run(bundles["vae"], cache, "--mlp", "none") == 0
    assert "latents from cache" not in capsys.readouterr().out
    assert _run(bundles["vae"], cache, "--mlp", "none", "--no-age") == 0
    out = capsys.readouterr().out
    assert "latents from cache" in out and "restricted" not in out
    assert len(list(cache.glob("*.safetensors"))) == 1


def test_probed_bundle_drives_conditional_sampling(bundles, tmp_path):
    assert _run(bundles["hvae"], tmp_path / "cache", "--mlp", "none") == 0
    bundle = load_bundle(str(bundles["hvae"]))
    res = conditional_sample(bundle, {"Male": 1}, 6, levels="informative", max_attempts=3,
                             generator=torch.Generator().manual_seed(0))
    assert res.images.shape == (6, 3, 16, 16) and len(res.latents) == 3
    assert all(0 <= r <= 1 for r in res.acceptance_rate.values())
    assert np.isfinite(res.images.numpy()).all()


def _median_classifier(bundle: Path, folder: Path) -> Path:
    """A small CNN whose thresholds sit at the median logit of the model's own samples: both classes occur."""
    torch.manual_seed(0)
    clf = AttributeClassifier(attribute_names=["Male", "Smiling"], image_size=16, widths=(8,)).eval()
    model = load_bundle(str(bundle), with_probes=False).model
    with torch.no_grad():
        logits = clf(model.sample(64, generator=torch.Generator().manual_seed(3)))
        clf.head.bias -= logits.median(0).values
    clf.save_pretrained(folder)
    return folder


def test_classifier_adds_generated_probes_that_sampling_prefers(bundles, tmp_path, capsys):
    clf = _median_classifier(bundles["vae"], tmp_path / "clf")
    assert _run(bundles["vae"], tmp_path / "cache", "--mlp", "none", "--classifier", str(clf)) == 0
    assert "| accuracy (svm, per level) |" in capsys.readouterr().out
    bundle = load_bundle(str(bundles["vae"]))
    probes = bundle.extras["probes"]
    assert probes.meta["source"] == "dataset"  # seed 000's tables stay on posterior means
    generated = probes.table("generated/svm/per_level")
    assert generated.attributes == probes.meta["generated"]["attributes"] == ["Male", "Smiling"]
    assert generated.n_train + generated.n_test == 160
    res = conditional_sample(bundle, {"Male": 1}, 8, generator=torch.Generator().manual_seed(0))
    assert res.probe_source == "generated" and res.satisfied.all()
    assert (generated.probe("Male", "z").predict(res.latents[0]) == 1).all()
    assert conditional_sample(bundle, {"Male": 1}, 2, probes="dataset").probe_source == "dataset"


def test_bad_bundle_is_a_usage_error(tmp_path, capsys):
    assert probe_main([str(tmp_path / "nope")]) == 2
    assert "error:" in capsys.readouterr().err
