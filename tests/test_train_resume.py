"""Kill a real training process part-way, resume it, and end with the weights of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from facelab.hub import WEIGHTS_FILE
from training.checkpoints import latest_checkpoint, list_checkpoints, read_state
from training.train import main

ROOT = Path(__file__).resolve().parents[1]
STEPS, EVERY = 40, 5  # 32 images / batch 4 = 8 steps per epoch: the kill lands mid-epoch, in a later epoch


def args(out: Path) -> list[str]:
    return ["--set", "model.kind=vae", "model.params.latent_dim=8", "model.params.base_channels=8",
            "model.params.max_channels=16", "data.image_size=16", "data.length=32", f"train.output_dir={out}",
            f"train.max_steps={STEPS}", "train.batch_size=4", f"train.checkpoint_every={EVERY}",
            "train.checkpoints_total_limit=2", "train.sample_every=0", "train.report_to=none", "train.log_every=5"]


def start_and_kill(out: Path) -> int:
    """Run train.py in a subprocess, SIGKILL it once a checkpoint exists; returns the checkpoint step."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    log = open(out.parent / f"{out.name}.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "training" / "train.py"), *args(out)],
                            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while latest_checkpoint(out / "checkpoints") is None:
            assert proc.poll() is None, "the run ended before writing a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    return read_state(latest_checkpoint(out / "checkpoints")).step


@pytest.mark.slow
def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path, capsys):
    killed = tmp_path / "killed"
    at = start_and_kill(killed)
    assert 0 < at < STEPS and not (killed / "bundle").exists()  # really interrupted part-way
    # debris of a crash while saving: a half-written temp folder and a folder lacking its state file
    (killed / "checkpoints" / f".tmp-checkpoint-{at + EVERY}").mkdir(exist_ok=True)
    (killed / "checkpoints" / ".tmp-checkpoint-99" / "model.safetensors").parent.mkdir()
    (killed / "checkpoints" / ".tmp-checkpoint-99" / "model.safetensors").write_bytes(b"\0" * 10)
    (killed / "checkpoints" / "checkpoint-98").mkdir()
    assert latest_checkpoint(killed / "checkpoints").name == f"checkpoint-{at}"

    first_part = read_state(latest_checkpoint(killed / "checkpoints")).seconds
    assert first_part > 0  # the checkpoint carries the wall time trained so far
    assert main(args(killed) + ["--resume", "latest"]) == 0
    assert f"checkpoint-{at} at step {at}" in capsys.readouterr().out  # continued where it stopped
    reference = tmp_path / "reference"
    assert main(args(reference)) == 0

    resumed = load_file(str(killed / "bundle" / WEIGHTS_FILE))
    uninterrupted = load_file(str(reference / "bundle" / WEIGHTS_FILE))
    assert resumed.keys() == uninterrupted.keys()
    for key in resumed:
        assert torch.allclose(resumed[key].float(), uninterrupted[key].float(), rtol=1e-5, atol=1e-6), key
    assert [p.name for p in list_checkpoints(killed / "checkpoints")] == ["checkpoint-35", "checkpoint-40"]
    assert read_state(killed / "checkpoints" / "checkpoint-40").images_seen == STEPS * 4
    card = json.loads((killed / "bundle" / "facelab.json").read_text())
    assert card["training"]["seconds"] > first_part  # both parts counted, not only the resumed one


def test_resume_from_a_path_that_is_not_a_checkpoint_is_refused(tmp_path, capsys):
    assert main(args(tmp_path / "x") + ["--resume", str(tmp_path)]) == 2
    assert "not a complete facelab checkpoint" in capsys.readouterr().err
