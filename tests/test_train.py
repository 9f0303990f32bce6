"""training/train.py in-process: CLI, presets, every model kind end to end, trackers, NaN stop, Hub push."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from facelab.config import load_config
from facelab.hub import WEIGHTS_FILE, load_bundle
from training.checkpoints import list_checkpoints
from training.train import main
from training.train_utils import resolve_model_params

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"


TINY = {
    "vae": ["model.params.latent_dim=8", "model.params.base_channels=8", "model.params.max_channels=16"],
    "cvae": ["model.params.latent_dim=8", "model.params.base_channels=8", "model.params.max_channels=16"],
    "hvae": ["model.params.width=16", "model.params.group_resolutions=[1,4,8]", "model.params.latent_channels=4"],
    "dcgan": ["model.params.nz=8", "model.params.ngf=8", "model.params.ndf=8"],
    "stylegan": ["model.params.z_dim=16", "model.params.w_dim=16", "model.params.mapping_layers=2",
                 "model.params.channel_base=64", "model.params.channel_max=16", "model.params.mbstd_group=2",
                 "model.params.fade_images=8", "model.params.stable_images=8", "model.params.r1_interval=2",
                 "train.lr_scheduler=inverse_sigmoid"],
}


def tiny_args(kind: str, out: Path, steps: int = 4, *extra: str) -> list[str]:
    """CLI args for a few steps of a tiny model on 16 px synthfaces."""
    return ["--set", f"model.kind={kind}", *TINY[kind], "data.image_size=16", "data.length=64",
            f"train.output_dir={out}", f"train.max_steps={steps}", "train.batch_size=4", "train.log_every=1",
            "train.sample_every=2", "train.checkpoint_every=2", "train.num_samples=4", *extra]


def scalars(out: Path) -> dict[str, list[tuple[int, float]]]:
    """TensorBoard scalars written through accelerate's tracker: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "logs" / "facelab"))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_dry_run_prints_resolved_yaml_and_writes_nothing(tmp_path, capsys):
    preset = CONFIGS / "vae_synthfaces64.yaml"
    rc = main(["--config", str(preset), "--dry-run", "--set", "train.max_steps=7", "data.background=grey",
               f"train.output_dir={tmp_path / 'run'}"])
    assert rc == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["train"]["max_steps"] == 7 and cfg["data"]["background"] == "grey"
    assert cfg["model"]["params"]["latent_dim"] == 64  # from the preset
    assert cfg["model"]["params"]["image_size"] == 64  # filled in: every constructor argument is resolved
    assert "alpha" in cfg["model"]["params"]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("override, key", [
    ("train.max_stepz=3", "train.max_stepz"),
    ("train.batch_size=abc", "train.batch_size"),
    ("data.background=purple", "data.background"),
    ("model.params.latent_dimz=3", "latent_dimz"),
    ("model.kind=vqgan", "model.kind"),
    ("train.lr_scheduler=bogus", "train.lr_scheduler"),
    ("model.params.image_size=32", "model.params.image_size"),
])
def test_bad_keys_and_types_are_refused_with_the_key_named(override, key, capsys):
    assert main(["--set", override, "--dry-run"]) == 2
    assert key in capsys.readouterr().err


def test_presets_cover_every_model_dataset_and_resolve():
    names = {p.stem for p in CONFIGS.glob("*.yaml")}
    expected = {f"{m}_{d}64" for m in ("vae", "betavae", "cvae", "hvae", "dcgan", "stylegan")
                for d in ("synthfaces", "celeba")} | {"vae_ffhq128", "stylegan_ffhq128", "hvae_ffhq256"}
    assert expected <= names
    for name in sorted(names):
        for background in ("original", "grey", "blur"):
            cfg = load_config(CONFIGS / f"{name}.yaml", [f"data.background={background}"])
            assert cfg.data.background == background
        model = resolve_model_params(cfg)  # model params are real constructor arguments
        assert model.image_size == cfg.data.image_size, name
    hvae = load_config(CONFIGS / "hvae_ffhq256.yaml")
    assert (hvae.data.name, hvae.data.image_size, hvae.model.params["group_resolutions"]) == ("ffhq", 256, [1, 4, 4, 8, 8])
    assert load_config(CONFIGS / "stylegan_synthfaces64.yaml").train.lr_scheduler == "inverse_sigmoid"


def check_bundle(out: Path, kind: str, steps: int = 4) -> dict:
    """The release bundle loads, samples, and carries the metadata and card the issue lists."""
    bundle = load_bundle(str(out / "bundle"))
    kwargs = {"attributes": torch.zeros(bundle.model.config.num_attributes)} if kind == "cvae" else {}
    images = bundle.model.sample(3, generator=torch.Generator().manual_seed(0), **kwargs)
    assert images.shape == (3, 3, 16, 16) and torch.isfinite(images).all()
    meta = bundle.meta
    assert (meta["kind"], meta["dataset"], meta["background"], meta["image_size"]) == (kind, "synthfaces", "original", 16)
    assert meta["attribute_names"] and meta["training"]["steps"] == steps
    assert meta["run_config"]["model"]["kind"] == kind
    assert load_config(out / "config.yaml").model.params == meta["run_config"]["model"]["params"]
    card = (out / "bundle" / "README.md").read_text()
    assert "## Training details" in card and "synthfaces" in card and "| factor prior | correlated |" in card
    assert (out / "bundle" / "samples.png").is_file()
    return meta


@pytest.mark.parametrize("kind", ["vae", "cvae", "hvae", "dcgan"])  # stylegan: its own test below
def test_each_model_trains_and_releases_a_loadable_bundle(kind, tmp_path):
    out = tmp_path / kind
    assert main(tiny_args(kind, out)) == 0
    meta = check_bundle(out, kind)
    losses = meta["final_losses"]
    assert all(math.isfinite(v) for v in losses.values())
    assert ({"d_loss", "g_loss"} if kind == "dcgan" else {"loss"}) <= set(losses)
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["checkpoint-2", "checkpoint-4"]
    samples = sorted(p.name for p in (out / "samples").glob("*.png"))
    assert "step_0000002.png" in samples and "step_0000004.png" in samples
    assert ("recon_0000004.png" in samples) == (kind in ("vae", "cvae", "hvae"))
    tags = scalars(out)
    if kind == "hvae":
        assert {"kl_0", "kl_1", "kl_2", "beta", "grad_norm", "skipped_updates"} <= set(tags)
    if kind == "vae":
        assert {"loss", "recon", "kl", "beta", "lr/model"} <= set(tags)
        assert [s for s, _ in tags["loss"]] == [1, 2, 3, 4]


def test_stylegan_grows_fades_decays_lr_and_keeps_an_ema(tmp_path):
    out = tmp_path / "sg"
    # batch 4, 8 stable + 8 fade images per phase: level 0 for 2 steps, then 8 px fades in over 2 steps
    assert main(tiny_args("stylegan", out, 8, "train.sample_every=8", "train.checkpoint_every=0")) == 0
    assert {"d_loss", "g_loss"} <= set(check_bundle(out, "stylegan", steps=8)["final_losses"])
    assert (out / "samples" / "step_0000008.png").is_file()
    tags = scalars(out)
    level = dict(tags["level"])
    alpha = dict(tags["alpha"])
    assert level[1] == 0 and level[8] == 2
    assert 0.0 < alpha[3] < 1.0 and alpha[4] == 1.0  # fade-in α rises during the 8 px fade phase
    lrs = [v for _, v in tags["lr/generator"]]
    assert lrs[0] > lrs[-1] and all(a >= b for a, b in zip(lrs, lrs[1:]))  # inverse-sigmoid decay
    assert "r1" in tags and "ema_beta" in tags
    weights = load_file(str(out / "bundle" / WEIGHTS_FILE))
    g = {k[len("generator."):]: v for k, v in weights.items() if k.startswith("generator.")}
    ema = {k[len("generator_ema."):]: v for k, v in weights.items() if k.startswith("generator_ema.")}
    assert g.keys() == ema.keys()
    assert any(not torch.equal(g[k], ema[k]) for k in g if g[k].is_floating_point())
    assert int(weights["level"]) == 2


def test_bf16_is_selectable_and_changes_the_numerics(tmp_path):
    runs = {}
    for precision in ("no", "bf16"):
        out = tmp_path / precision
        assert main(tiny_args("vae", out, 2, f"train.mixed_precision='{precision}'", "train.report_to=none")) == 0
        runs[precision] = load_file(str(out / "bundle" / WEIGHTS_FILE))
        assert json.loads((out / "bundle" / "facelab.json").read_text())["training"]["mixed_precision"] == precision
        assert not (out / "logs").exists()  # report_to=none: no tracker files
    key = "to_posterior.weight"
    assert runs["bf16"][key].dtype == torch.float32  # weights stay fp32 under autocast
    assert not torch.equal(runs["no"][key], runs["bf16"][key])
    assert torch.allclose(runs["no"][key], runs["bf16"][key], atol=0.05)


def test_non_finite_loss_stops_with_step_and_last_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "nan"
    rc = main(tiny_args("vae", out, 20, "train.learning_rate=1e30", "train.checkpoint_every=1",
                        "train.report_to=none"))
    err = capsys.readouterr().err
    assert rc == 1 and "non-finite loss at step" in err
    step = int(err.split("non-finite loss at step ")[1].split()[0])
    good = list_checkpoints(out / "checkpoints")[-1]
    assert good.name == f"checkpoint-{step - 1}" and str(good) in err
    weights = load_file(str(good / "model.safetensors"))
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
    assert not (out / "bundle").exists()  # never a silent NaN model


def test_push_offline_fails_clearly_and_keeps_the_bundle(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    out = tmp_path / "push"
    rc = main(tiny_args("dcgan", out, 1, "train.report_to=none", "train.checkpoint_every=0")
              + ["--push-to-hub", "someone/facelab-test", "--private"])
    err = capsys.readouterr().err
    assert rc == 1 and "someone/facelab-test" in err and "HF_HUB_OFFLINE" in err
    assert str(out / "bundle") in err
    assert load_bundle(str(out / "bundle")).meta["run_config"]["hub"]["push_to_hub"] == "someone/facelab-test"


def test_fresh_run_refuses_an_output_dir_with_checkpoints(tmp_path, capsys):
    out = tmp_path / "again"
    assert main(tiny_args("vae", out, 2, "train.report_to=none", "train.sample_every=0")) == 0
    assert main(tiny_args("vae", out, 2, "train.report_to=none")) == 2
    assert "--resume latest" in capsys.readouterr().err
