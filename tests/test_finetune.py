"""Foreground-weighted reconstruction (VAE background_weight) and fine-tuning from a bundle (train.init_from)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facelab.config import ConfigError
from facelab.data.synthfaces import SynthFaces, _NUISANCE_SALT, render
from facelab.data.synthfaces_pairs import SynthFacePairs
from facelab.hub import load_bundle
from facelab.models.vae import VAE, foreground_weight, reconstruction_nll
from training.train import main
from training.train_utils import init_weights
from tests.test_train import check_bundle, tiny_args


def _faces(n: int = 4, size: int = 16) -> dict[str, torch.Tensor]:
    return torch.utils.data.default_collate(SynthFaces(size=size, length=n).__getitems__(list(range(n))))


def test_foreground_weight_is_mask_plus_w_times_background():
    masks = torch.tensor([[[[0.0, 0.5], [1.0, 0.25]]]])
    weight = foreground_weight(masks, 0.2)
    assert torch.allclose(weight, torch.tensor([[[[0.2, 0.6], [1.0, 0.4]]]]))
    assert foreground_weight(None, 1.0) is None  # w = 1: the plain loss, masks not needed
    with pytest.raises(ValueError, match="prepare_data.py"):
        foreground_weight(None, 0.5)


def test_zero_background_weight_ignores_every_background_pixel():
    batch = _faces()
    x, mask = batch["image"], batch["mask"]
    logits = torch.randn_like(x)
    other = torch.where(mask > 0, x, -x)  # the same faces on a different background
    w0 = foreground_weight(mask, 0.0)
    assert torch.allclose(reconstruction_nll(x, logits, "mse", weight=w0),
                          reconstruction_nll(other, logits, "mse", weight=w0))
    assert not torch.allclose(reconstruction_nll(x, logits, "mse"), reconstruction_nll(other, logits, "mse"))


def test_vae_weights_the_background_in_training_only():
    torch.manual_seed(0)
    kw = dict(image_size=16, latent_dim=8, base_channels=8, max_channels=16)
    plain, weighted = VAE(**kw), VAE(**kw, background_weight=0.1)
    weighted.load_state_dict(plain.state_dict())
    batch = _faces()

    def recon(model: VAE) -> float:
        torch.manual_seed(1)  # the same posterior noise for both models
        return float(model(batch)["recon"])

    assert recon(weighted) < 0.9 * recon(plain)  # background pixels count a tenth
    plain.eval(), weighted.eval()
    assert recon(weighted) == pytest.approx(recon(plain))  # evaluation: the true ELBO, unweighted
    weighted.train()
    with pytest.raises(ValueError, match="foreground masks"):
        weighted({"image": batch["image"]})
    with pytest.raises(ValueError, match="background_weight"):
        VAE(**kw, background_weight=1.5)


def test_pairs_carry_the_partners_own_mask():
    item = SynthFacePairs(size=32, length=8, seed=0, changes=1)[3]
    seeds = SynthFaces(size=32, length=8, seed=0)._keyed_factors(np.array([3]))[0] ^ _NUISANCE_SALT
    _, mask = render(item["factors_pair"].numpy()[None], 32, seeds)
    assert np.allclose(item["mask_pair"][0].numpy(), mask[0])
    # the weighted Ada-GVAE loss runs on pairs
    model = VAE(image_size=32, latent_dim=8, base_channels=8, max_channels=16, pair_averaging="ada_gvae",
                background_weight=0.25)
    batch = torch.utils.data.default_collate([item, SynthFacePairs(size=32, length=8, changes=1)[4]])
    assert torch.isfinite(model(batch)["loss"])


@pytest.fixture(scope="module")
def start_bundle(tmp_path_factory):
    """A tiny trained VAE bundle to fine-tune from."""
    out = tmp_path_factory.mktemp("start")
    assert main(tiny_args("vae", out, 2)) == 0
    return out / "bundle"


def test_init_from_copies_the_bundle_weights_and_refuses_other_networks(start_bundle, tmp_path):
    theirs = load_bundle(str(start_bundle)).model.state_dict()
    model = VAE(image_size=16, latent_dim=8, base_channels=8, max_channels=16, beta=0.5, background_weight=0.3)
    init_weights(model, str(start_bundle))  # other loss settings are fine: only the networks must match
    assert all(torch.equal(model.state_dict()[k], v) for k, v in theirs.items())
    with pytest.raises(ConfigError, match="base_channels"):
        init_weights(VAE(image_size=16, latent_dim=8, base_channels=4, max_channels=16), str(start_bundle))
    from facelab.models.dcgan import DCGAN

    with pytest.raises(ConfigError, match="holds a vae but model.kind is dcgan"):
        init_weights(DCGAN(image_size=16, nz=8, ngf=8, ndf=8), str(start_bundle))
    with pytest.raises(ConfigError, match="train.init_from"):
        init_weights(model, str(tmp_path / "missing"))


def test_fine_tuning_through_the_script_starts_from_the_bundle(start_bundle, tmp_path):
    out = tmp_path / "ft"
    args = tiny_args("vae", out, 2, f"train.init_from={start_bundle}", "model.params.background_weight=0.2",
                     "train.learning_rate=1e-5")
    assert main(args) == 0
    meta = check_bundle(out, "vae", steps=2)
    start = load_bundle(str(start_bundle)).model.state_dict()
    tuned = load_bundle(str(out / "bundle")).model.state_dict()
    fresh = VAE(image_size=16, latent_dim=8, base_channels=8, max_channels=16).state_dict()
    key = "to_posterior.weight"
    # two tiny steps away from the bundle, far from a fresh initialisation
    assert (tuned[key] - start[key]).abs().max() < 1e-3 < (tuned[key] - fresh[key]).abs().max()
    assert meta["run_config"]["model"]["params"]["background_weight"] == 0.2
    assert f"| initialised from | {start_bundle} |" in (out / "bundle" / "README.md").read_text()
    assert main(tiny_args("vae", tmp_path / "bad", 2, f"train.init_from={tmp_path / 'nope'}")) == 2


def test_a_bundle_fine_tuned_twice_carries_every_stage_of_its_recipe(start_bundle, tmp_path):
    stage2, stage3 = tmp_path / "stage2", tmp_path / "stage3"
    assert main(tiny_args("vae", stage2, 2, f"train.init_from={start_bundle}", "model.params.background_weight=0.2",
                          "train.learning_rate=1e-5")) == 0
    assert main(tiny_args("vae", stage3, 3, f"train.init_from={stage2 / 'bundle'}",
                          "model.params.background_weight=0.5", "train.lr_scheduler=cosine")) == 0
    meta = check_bundle(stage3, "vae", steps=3)
    first = load_bundle(str(start_bundle)).meta
    assert "lineage" not in first  # trained from scratch: no history
    stages = meta["lineage"]
    assert [s["name"] for s in stages] == [first["name"], "stage2"]
    assert [s["source"] for s in stages] == [str(start_bundle), str(stage2 / "bundle")]
    assert stages[1]["run_config"]["model"]["params"]["background_weight"] == 0.2
    assert stages[0]["run_config"] == first["run_config"] and stages[1]["training"]["steps"] == 2
    seen = [s["training"]["images_seen"] for s in stages] + [meta["training"]["images_seen"]]
    assert meta["training"]["images_seen_all_stages"] == sum(seen) and len(set(seen)) > 1
    card = (stage3 / "bundle" / "README.md").read_text()
    table = card.split("## Training history")[1].split("##")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    # header + one row per stage, oldest first; background_weight changed, so it has a column
    assert rows[0].startswith("| stage | start | steps | learning rate | LR schedule |")
    assert "background_weight" in rows[0]
    assert "latent_dim" not in rows[0]  # unchanged params stay out of the table
    assert rows[1].startswith(f"| {first['name']} | from scratch | 2 |") and rows[1].endswith("| 1 |")
    assert rows[2].startswith("| stage2 | fine-tune | 2 | model 1e-05 |") and rows[2].endswith("| 0.2 |")
    assert rows[3].startswith("| stage3 | fine-tune | 3 |") and "| cosine |" in rows[3] and rows[3].endswith("| 0.5 |")


def test_history_table_gives_each_stage_its_images_and_measured_fid():
    from facelab.cards import history_table, training_stage

    first = {"name": "s1", "training": {"steps": 5, "images_seen": 320}, "run_config": {},
             "metrics": {"fid_1000": 154.12}}
    meta = {"name": "s2", "training": {"steps": 10, "images_seen": 640}, "run_config": {},
            "metrics": {"fid_1000": 64.66}, "lineage": [training_stage(first, "assets/s1")]}
    rows = [r for r in history_table(meta).splitlines() if r.startswith(("| s1 ", "| s2 "))]
    assert "images | FID (1000) |" in history_table(meta)
    assert rows[0].endswith("| 320 | 154.1 |") and rows[1].endswith("| 640 | 64.7 |")
