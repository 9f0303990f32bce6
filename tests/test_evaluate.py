"""training/evaluate.py on tiny trained bundles: metrics.json, facelab.json, card and table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from facelab.hub import load_bundle
from facelab.metrics.evaluate import EvalSettings, evaluate_bundle
from facelab.metrics.reconstruction import bits_per_dim, reconstruction_scores
from training.evaluate import main as evaluate_main
from training.train import main as train_main
from training.train_classifier import main as train_classifier_main

TINY = {
    "vae": ["model.params.latent_dim=8", "model.params.base_channels=8", "model.params.max_channels=16"],
    "dcgan": ["model.params.nz=8", "model.params.ngf=8", "model.params.ndf=8"],
}
DISENT = ["--disent-batch", "4", "--disent-train", "40", "--disent-eval", "20", "--dci-method", "lasso"]


def _train(kind: str, out: Path) -> Path:
    rc = train_main(["--set", f"model.kind={kind}", *TINY[kind], "data.image_size=16", "data.length=64",
                     f"train.output_dir={out}", "train.max_steps=4", "train.batch_size=8",
                     "train.sample_every=100", "train.checkpoint_every=100", "train.num_samples=4",
                     "train.report_to=none"])
    assert rc == 0
    return out / "bundle"


@pytest.fixture(scope="module")
def vae_bundle(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return _train("vae", tmp_path_factory.mktemp("vae"))


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clf") / "clf"
    assert train_classifier_main(["--size", "16", "--length", "96", "--steps", "3", "--batch", "8",
                                  "--max-eval", "16", "--out", str(out)]) == 0
    return out


def test_evaluate_cli_writes_metrics_for_an_encoder_bundle(vae_bundle, classifier, capsys):
    rc = evaluate_main([str(vae_bundle), "--n", "48", "--batch-size", "16", "--classifier", str(classifier),
                        "--no-fid", *DISENT])
    assert rc == 0
    result = json.loads((vae_bundle / "metrics.json").read_text())
    metrics = result["metrics"]
    expected = {"fd_attr", "kd_attr_mean", "classifier_accuracy", "attribute_prevalence_gap",
                "recon_mse", "psnr", "bits_per_dim", "background_share", "background_share_bg_kind",
                "background_share_bg_colour", "beta_vae_eval_accuracy", "factor_vae_eval_accuracy", "mig",
                "dci_disentanglement", "dci_completeness", "dci_informativeness"}
    assert expected <= set(metrics), expected - set(metrics)
    assert "fid" not in metrics and result["notes"]["fid"].startswith("skipped")
    assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in metrics.values())
    assert 0.0 <= metrics["background_share"] <= 1.0 and metrics["recon_mse"] > 0
    assert result["details"]["reconstruction"]["bpd_source"] == "gaussian_mle_sigma"  # recon="mse" VAE
    assert result["details"]["background"]["all"]["n"] == 48
    meta = json.loads((vae_bundle / "facelab.json").read_text())
    assert meta["metrics"]["fd_attr"] == metrics["fd_attr"] and meta["kind"] == "vae"
    assert "## Metrics" in (vae_bundle / "README.md").read_text()
    out = capsys.readouterr().out
    assert "| fd_attr |" in out and "- fid: skipped" in out


def test_gan_bundle_gets_inception_fid_and_no_encoder_metrics(tmp_path):
    bundle = _train("dcgan", tmp_path / "gan")
    result = evaluate_bundle(bundle, EvalSettings(n=2, batch_size=2, kid_subset_size=2))
    assert {"fid", "kid_mean"} <= set(result["metrics"])
    assert "kid_std" not in result["metrics"]  # 2 images: every KID subset is the whole set, no spread
    assert result["metrics"]["fid"] > 0 and result["details"]["n_real"] == 2
    assert not {"recon_mse", "background_share", "mig"} & set(result["metrics"])
    assert "no encoder" in result["notes"]["encoder"]


def test_reconstruction_and_bits_per_dim(vae_bundle):
    model = load_bundle(str(vae_bundle)).model
    x = torch.rand(6, 3, 16, 16) * 2 - 1
    batches = [{"image": x[:3], "attributes": torch.zeros(3, 15)}, {"image": x[3:], "attributes": torch.zeros(3, 15)}]
    rec = reconstruction_scores(model, batches)
    with torch.no_grad():
        direct = (model.reconstruct(x).clamp(-1, 1) - x).pow(2).mean()
    assert rec["recon_mse"] == pytest.approx(float(direct), rel=1e-4) and rec["recon_n"] == 6
    # mean per-image PSNR >= PSNR of the mean MSE (Jensen), both on the peak-to-peak-2 scale
    assert rec["psnr"] >= 10 * math.log10(4 / rec["recon_mse"]) - 1e-6
    bpd = bits_per_dim(model, batches, seed=0)
    assert bpd == bits_per_dim(model, batches, seed=0)  # fixed seed: reproducible
    assert bpd["bpd_source"] == "gaussian_mle_sigma" and 0 < bpd["bits_per_dim"] < 16


def test_evaluate_refuses_a_missing_bundle(tmp_path, capsys):
    assert evaluate_main([str(tmp_path / "nothing")]) == 2
    assert "not a bundle folder" in capsys.readouterr().err
