"""Weak supervision: synthfaces pairs and the Ada-GVAE pair averaging, through the real training script."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facelab.config import ConfigError, DataConfig
from facelab.data.build import build_dataset
from facelab.data.synthfaces import SynthFaces, render
from facelab.data.synthfaces_factors import FACTOR_NAMES
from facelab.data.synthfaces_pairs import SynthFacePairs
from facelab.models.vae import VAE, ada_gvae_average, pair_difference_error
from training.data import make_dataset
from training.train import main
from tests.test_train import check_bundle, scalars, tiny_args


def test_pairs_share_the_first_face_and_differ_only_in_the_changed_factors():
    pairs, plain = SynthFacePairs(size=16, length=64, seed=3), SynthFaces(size=16, length=64, seed=3)
    items, originals = pairs.__getitems__(list(range(40))), plain.__getitems__(list(range(40)))
    counts = []
    for item, original in zip(items, originals):
        assert torch.equal(item["image"], original["image"])  # the first face is SynthFaces' own item
        changed = item["factors"] != item["factors_pair"]
        assert torch.equal(changed, item["changed"])
        counts.append(int(changed.sum()))
        if not changed.any():  # same factors and the same nuisance seed: the same picture
            assert torch.equal(item["image"], item["image_pair"])
    assert max(counts) > 1 and 0 < np.mean(counts) < len(FACTOR_NAMES) - 1
    again = pairs[7]
    assert torch.equal(again["image_pair"], items[7]["image_pair"])  # a pure function of (seed, index)


def test_pair_partner_keeps_the_nuisance_seed():
    item = SynthFacePairs(size=32, length=8, seed=0, changes=1)[5]
    (k,) = torch.nonzero(item["changed"]).flatten().tolist() or [None]
    assert k is not None or torch.equal(item["image"], item["image_pair"])
    # re-render the partner's factors with the first face's seed: identical pixels
    first = SynthFaces(size=32, length=8, seed=0)
    from facelab.data.synthfaces import _NUISANCE_SALT

    seeds = first._keyed_factors(np.array([5]))[0] ^ _NUISANCE_SALT
    image, _ = render(item["factors_pair"].numpy()[None], 32, seeds)
    assert np.array_equal(((item["image_pair"].permute(1, 2, 0).numpy() + 1) * 127.5).round(), image[0])


@pytest.mark.parametrize("changes", [1, 3])
def test_fixed_number_of_changes_is_an_upper_bound(changes):
    items = SynthFacePairs(size=16, length=64, changes=changes).__getitems__(list(range(64)))
    counts = [int(i["changed"].sum()) for i in items]
    assert max(counts) == changes and all(c <= changes for c in counts)


@pytest.mark.parametrize("changes", [0, len(FACTOR_NAMES), 2.5, True])
def test_bad_changes_are_refused(changes):
    with pytest.raises(ValueError, match="changes"):
        SynthFacePairs(size=16, changes=changes)


def test_pairs_are_a_synthfaces_option_only():
    assert isinstance(build_dataset("synthfaces", size=16, pairs=True), SynthFacePairs)
    with pytest.raises(ConfigError, match="data.pairs needs synthfaces"):
        make_dataset(DataConfig(name="folder", root="nowhere", pairs=True))


def test_uniform_prior_pairs_through_the_data_config():
    ds = make_dataset(DataConfig(name="synthfaces", image_size=16, length=400, pairs=True, pair_changes=1,
                                 factor_prior="uniform")).base
    assert isinstance(ds, SynthFacePairs) and ds.prior == "uniform"
    items = ds.__getitems__(list(range(400)))
    first = np.stack([it["factors"].numpy() for it in items])
    second = np.stack([it["factors_pair"].numpy() for it in items])
    assert ((first != second).sum(1) <= 1).all()
    lipstick, male = FACTOR_NAMES.index("lipstick"), FACTOR_NAMES.index("sex")
    # partners are redrawn from the uniform prior too: men with lipstick on both sides of pairs
    assert ((second[:, lipstick] == 1) & (second[:, male] == 1)).mean() > 0.15
    with pytest.raises(ConfigError, match="data.factor_prior is a synthfaces option"):
        make_dataset(DataConfig(name="folder", root="nowhere", factor_prior="uniform"))


def test_ada_gvae_averages_exactly_the_dimensions_that_agree():
    mu1, mu2 = torch.zeros(1, 6), torch.zeros(1, 6)
    mu2[0, :2] = 3.0  # dimensions 0 and 1 moved between the two faces
    mu1[0, 4] = 0.2  # a small disagreement still counts as shared
    lv = torch.zeros(2, 6)
    mu, logvar, shared = ada_gvae_average(torch.cat([mu1, mu2]), lv)
    assert shared.tolist() == [[False, False, True, True, True, True]]
    assert torch.equal(mu[0, :2], mu1[0, :2]) and torch.equal(mu[1, :2], mu2[0, :2])  # kept apart
    assert torch.allclose(mu[0, 2:], mu[1, 2:]) and math.isclose(float(mu[0, 4]), 0.1, rel_tol=1e-6)
    assert torch.allclose(logvar, torch.zeros_like(logvar))  # equal variances average to themselves


def test_ada_gvae_loss_needs_pairs_in_training_and_not_in_eval():
    torch.manual_seed(0)
    model = VAE(image_size=16, latent_dim=8, base_channels=8, max_channels=16, pair_averaging="ada_gvae")
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    with pytest.raises(ValueError, match="data.pairs"):
        model({"image": x})
    out = model({"image": x, "image_pair": x.flip(0)})
    assert 0 <= float(out["shared_dims"]) <= 8 and torch.isfinite(out["loss"])
    same = model({"image": x, "image_pair": x})  # identical pairs: every dimension is shared
    assert float(same["shared_dims"]) == 8
    model.eval()
    assert torch.isfinite(model({"image": x})["loss"])  # eval (bits/dim) takes single faces
    with pytest.raises(ValueError, match="pair_averaging"):
        VAE(image_size=16, pair_averaging="mean")


def test_ada_gvae_trains_through_the_script_and_logs_shared_dims(tmp_path):
    out = tmp_path / "ada"
    args = tiny_args("vae", out, 4, "data.pairs=true", "model.params.pair_averaging=ada_gvae")
    assert main(args) == 0
    meta = check_bundle(out, "vae")
    assert meta["run_config"]["data"]["pairs"] is True
    assert "Ada-GVAE" in (out / "bundle" / "README.md").read_text()  # the card says how it was trained
    shared = scalars(out)["shared_dims"]
    assert [s for s, _ in shared] == [1, 2, 3, 4] and all(0 < v <= 8 for _, v in shared)


def test_pair_difference_error_is_exactly_the_pair_mse_part_on_what_differs():
    torch.manual_seed(0)
    x, logits = torch.rand(6, 3, 8, 8) * 2 - 1, torch.randn(6, 3, 8, 8)
    e1, e2 = (torch.tanh(logits / 2) - x).chunk(2)
    pair_mse = 0.5 * (e1.pow(2) + e2.pow(2)).flatten(1).sum(1)
    shared_part = 0.25 * (e1 + e2).pow(2).flatten(1).sum(1)
    diff = pair_difference_error(x, logits, "mse")
    assert diff.shape == (3,) and torch.allclose(shared_part + diff, pair_mse, rtol=1e-5)
    # an error both faces share (a blurred background, say) is not an error on the difference
    x_same_err = torch.tanh(logits / 2) - torch.cat([e1, e1])
    assert torch.allclose(pair_difference_error(x_same_err, logits, "mse"), torch.zeros(3), atol=1e-4)
    # gaussian: the same part of Σ ½((x̂ − x) / σ)², i.e. / (2σ²)
    log_sigma = torch.tensor(-1.0)
    assert torch.allclose(pair_difference_error(x, logits, "gaussian", log_sigma), diff * 0.5 * math.exp(2.0))
    # a foreground weight counts each pixel at the pair's mean weight
    w = torch.cat([torch.full((3, 1, 8, 8), 0.2), torch.full((3, 1, 8, 8), 0.6)])
    assert torch.allclose(pair_difference_error(x, logits, "mse", weight=w), 0.4 * diff, rtol=1e-5)
    with pytest.raises(ValueError, match="bce"):
        pair_difference_error(x, logits, "bce")


def test_pair_difference_weight_adds_lambda_times_the_difference_in_training_only():
    torch.manual_seed(0)
    plain = VAE(image_size=16, latent_dim=8, base_channels=8, max_channels=16, pair_averaging="ada_gvae")
    weighted = VAE(image_size=16, latent_dim=8, base_channels=8, max_channels=16, pair_averaging="ada_gvae",
                   pair_difference_weight=3.0)
    weighted.load_state_dict(plain.state_dict())
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    batch = {"image": x, "image_pair": x.flip(0)}
    torch.manual_seed(1)
    a = plain(batch)
    torch.manual_seed(1)
    b = weighted(batch)
    assert float(b["pair_difference"]) > 0 and "pair_difference" not in a
    added = float(b["loss"].detach()) - float(a["loss"].detach())
    assert math.isclose(added, 3.0 * float(b["pair_difference"]), rel_tol=1e-4)
    scaled = VAE(image_size=16, latent_dim=8, base_channels=8, max_channels=16, pair_averaging="ada_gvae",
                 pair_difference_weight=3.0, alpha=2.0)
    scaled.load_state_dict(plain.state_dict())
    torch.manual_seed(1)
    c = scaled(batch)  # on the reconstruction term's scale: α·(recon + λ·difference) + KL
    assert math.isclose(float(c["loss"].detach()) - float(c["kl"]),
                        2.0 * (float(c["recon"]) + 3.0 * float(c["pair_difference"])), rel_tol=1e-4)
    weighted.eval()
    assert "pair_difference" not in weighted({"image": x})  # evaluation stays the plain ELBO
    with pytest.raises(ValueError, match=">= 0"):
        VAE(image_size=16, pair_averaging="ada_gvae", pair_difference_weight=-1.0)
    with pytest.raises(ValueError, match="pair_averaging='ada_gvae'"):
        VAE(image_size=16, pair_difference_weight=1.0)
    with pytest.raises(ValueError, match="'mse' or 'gaussian'"):
        VAE(image_size=16, pair_averaging="ada_gvae", recon="bce", pair_difference_weight=1.0)


def test_pair_difference_weight_trains_through_the_script(tmp_path):
    out = tmp_path / "pd"
    args = tiny_args("vae", out, 4, "data.pairs=true", "model.params.pair_averaging=ada_gvae",
                     "model.params.pair_difference_weight=4")
    assert main(args) == 0
    meta = check_bundle(out, "vae")
    assert meta["run_config"]["model"]["params"]["pair_difference_weight"] == 4
    logged = scalars(out)["pair_difference"]
    assert [s for s, _ in logged] == [1, 2, 3, 4] and all(v > 0 for _, v in logged)
