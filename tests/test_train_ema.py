"""train.ema_decay: the VAE family releases and samples an EMA of its weights, saved with checkpoints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from facelab.hub import WEIGHTS_FILE, load_bundle
from training.checkpoints import list_checkpoints
from training.ema import EMA_FILE
from training.train import main

from tests.test_train import tiny_args


def ema_args(out: Path, steps: int = 6, decay: float = 0.5) -> list[str]:
    """A tiny HVAE run keeping a weight average; checkpoints every 2 steps, every one kept."""
    return [*tiny_args("hvae", out, steps, f"train.ema_decay={decay}", "train.checkpoints_total_limit=10",
                       "train.report_to=none")]


def test_bundle_holds_the_average_and_checkpoints_hold_both(tmp_path):
    out = tmp_path / "run"
    assert main(ema_args(out)) == 0
    last = list_checkpoints(out / "checkpoints")[-1]
    raw = load_file(str(last / "model.safetensors"))
    shadow = load_file(str(last / EMA_FILE))
    released = load_file(str(out / "bundle" / WEIGHTS_FILE))
    manifest = json.loads((last / "manifest.json").read_text())["files"]
    assert EMA_FILE in manifest  # verified with the rest on --resume
    # the release is the average: parameter by parameter the shadow weights, not the raw ones
    model = load_bundle(out / "bundle").model
    params = dict(model.named_parameters())
    assert len(shadow) == len(params)
    for i, (name, p) in enumerate(params.items()):
        assert torch.equal(p.detach(), shadow[f"p{i}"]), name
    assert any(not torch.equal(raw[name], released[name]) for name in params)
    meta = json.loads((out / "bundle" / "facelab.json").read_text())
    assert meta["training"]["ema_decay"] == 0.5
    assert "EMA decay" in (out / "bundle" / "README.md").read_text()


def test_resume_continues_the_same_average(tmp_path):
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert main(ema_args(whole)) == 0
    # replay the first 4 steps' checkpoint, then resume to 6: the average must be restored, not restarted
    part.mkdir()
    shutil.copytree(whole / "checkpoints" / "checkpoint-4", part / "checkpoints" / "checkpoint-4")
    assert main([*ema_args(part), "--resume", "latest"]) == 0
    a = load_file(str(whole / "bundle" / WEIGHTS_FILE))
    b = load_file(str(part / "bundle" / WEIGHTS_FILE))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_without_an_average_starts_one_and_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(tiny_args("hvae", out, 2, "train.report_to=none")) == 0
    assert main([*ema_args(out, steps=4), "--resume", "latest"]) == 0
    assert "holds no weight average" in capsys.readouterr().out
    assert (list_checkpoints(out / "checkpoints")[-1] / EMA_FILE).is_file()


@pytest.mark.parametrize("extra, message", [
    (["train.ema_decay=1.5"], "train.ema_decay must be in (0, 1)"),
    (["train.ema_decay=0"], "train.ema_decay must be in (0, 1)"),
])
def test_bad_decay_is_refused(extra, message, tmp_path, capsys):
    assert main(tiny_args("vae", tmp_path / "run", 2, *extra)) == 2
    assert message in capsys.readouterr().err


def test_gans_keep_their_own_ema(tmp_path, capsys):
    assert main(tiny_args("dcgan", tmp_path / "run", 2, "train.ema_decay=0.9")) == 2
    assert "keeps its own EMA generator" in capsys.readouterr().err
