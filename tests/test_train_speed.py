"""train.channels_last / train.compile: CPU levers that change speed, never the model or its weights' names."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from facelab.hub import WEIGHTS_FILE, load_bundle
from facelab.models import MODELS
from torch._dynamo.utils import counters

from fixtures_servers import ensure_apt
from training.speed import apply_speed_options, batch_channels_last, compiler_missing
from training.train import main

from tests.test_train import tiny_args


def test_levers_keep_names_and_compute_the_same_forward():
    torch.manual_seed(0)
    model = MODELS["dcgan"](image_size=16, nz=8, ngf=8, ndf=8, d_norm="spectral").eval()
    keys = list(model.state_dict())
    batch = {"image": torch.rand(4, 3, 16, 16) * 2 - 1}
    with torch.no_grad():  # D's score of real images: no sampling noise, so eager and compiled must agree
        eager = model(batch, phase="discriminator")["d_real"]
    ensure_apt(("g++",), "g++")  # inductor's CPU backend compiles C++
    assert compiler_missing() is None
    graphs = counters["stats"]["unique_graphs"]
    active = apply_speed_options(model, channels_last=True, compile_model=True, say=lambda m: None)
    assert active == ["channels_last", "compile"]
    assert list(model.state_dict()) == keys  # no _orig_mod. prefix: bundles and resume stay compatible
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fast = model(batch_channels_last(batch), phase="discriminator")["d_real"]
    assert counters["stats"]["unique_graphs"] > graphs  # dynamo really captured the forward
    assert torch.allclose(fast, eager, atol=1e-5)


@pytest.mark.parametrize("kind, levers", [("dcgan", ["train.channels_last=true", "train.compile=true"]),
                                          ("stylegan", ["train.channels_last=true"])])  # the presets' choices
def test_a_run_with_the_levers_trains_and_releases_the_same_layout(tmp_path, kind, levers):
    plain, fast = tmp_path / "plain", tmp_path / "fast"
    assert main(tiny_args(kind, plain, 2, "train.report_to=none")) == 0
    assert main(tiny_args(kind, fast, 2, "train.report_to=none", *levers)) == 0
    a, b = load_file(str(plain / "bundle" / WEIGHTS_FILE)), load_file(str(fast / "bundle" / WEIGHTS_FILE))
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    # Same seed and data; a compiled graph draws z with inductor's own RNG, so the two runs' noise can
    # differ, but two Adam steps move no parameter more than ~2 learning rates from the shared start.
    params = [name for name, _ in load_bundle(plain / "bundle").model.named_parameters()]
    lr = load_bundle(plain / "bundle").meta["run_config"]["model"]["params"].get("lr", 2e-3)
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in params) <= 5 * lr
    assert load_bundle(fast / "bundle").model.sample(2, seed=0).shape[0] == 2


def test_without_a_compiler_the_run_says_so_and_trains_uncompiled(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-g++"))
    assert "C++ compiler" in (compiler_missing() or "")
    out = tmp_path / "run"
    assert main(tiny_args("dcgan", out, 2, "train.report_to=none", "train.compile=true")) == 0
    assert "no-such-g++" in capsys.readouterr().out
    assert load_bundle(out / "bundle").meta["training"]["speed_levers"] == []  # said, and recorded


def test_the_bundle_records_the_levers_in_effect(tmp_path):
    out = tmp_path / "run"
    assert main(tiny_args("stylegan", out, 2, "train.report_to=none", "train.channels_last=true")) == 0
    assert load_bundle(out / "bundle").meta["training"]["speed_levers"] == ["channels_last"]


def test_a_stylegan_with_r1_trains_uncompiled_and_says_why(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(tiny_args("stylegan", out, 2, "train.report_to=none", "train.compile=true")) == 0
    assert "double backward" in capsys.readouterr().out
    assert load_bundle(out / "bundle").meta["training"]["speed_levers"] == []
