"""Resume trusts only checkpoints that verify: a damaged newest checkpoint is passed over with a warning
naming it, an explicitly chosen damaged one is an error, and a checkpoint is restored whole or not at all.

Real tiny training runs (training/train.py's main) write real accelerate checkpoints; the damage is
done to their files on disk.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from training.checkpoints import MANIFEST_FILE, list_checkpoints, verify_checkpoint
from training.train import main


def args(out: Path, steps: int) -> list[str]:
    return ["--set", "model.kind=vae", "model.params.latent_dim=4", "model.params.base_channels=8",
            "model.params.max_channels=16", "data.image_size=16", "data.length=16", f"train.output_dir={out}",
            f"train.max_steps={steps}", "train.batch_size=4", "train.checkpoint_every=2",
            "train.checkpoints_total_limit=2", "train.sample_every=0", "train.report_to=none", "train.log_every=2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run with checkpoint-2 and checkpoint-4, copied afresh by each test."""
    out = tmp_path_factory.mktemp("verified") / "run"
    assert main(args(out, 4)) == 0
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["checkpoint-2", "checkpoint-4"]
    return out


@pytest.fixture
def run(trained, tmp_path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "run"))


class _Evil:
    def __reduce__(self):
        return (print, ("this pickle would run code",))


def test_checkpoints_carry_a_manifest_of_every_file(run):
    ckpt = run / "checkpoints" / "checkpoint-4"
    files = json.loads((ckpt / MANIFEST_FILE).read_text())["files"]
    assert {"model.safetensors", "trainer_state.json", "random_states_0.pkl"} <= set(files)
    assert verify_checkpoint(ckpt) is None


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_one_and_says_so(run, capsys):
    weights = run / "checkpoints" / "checkpoint-4" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    assert main(args(run, 6) + ["--resume", "latest"]) == 0
    out = capsys.readouterr()
    assert "skipping checkpoint-4: model.safetensors has 100 bytes" in out.err
    assert "resuming from checkpoint-2, the newest checkpoint that verifies" in out.err
    assert "checkpoint-2 at step 2" in out.out


def test_a_replaced_rng_state_is_caught_by_the_manifest(run, capsys):
    rng = run / "checkpoints" / "checkpoint-4" / "random_states_0.pkl"
    rng.write_bytes(pickle.dumps(_Evil()))
    assert main(args(run, 6) + ["--resume", "latest"]) == 0
    out = capsys.readouterr()
    assert "skipping checkpoint-4: random_states_0.pkl has" in out.err and "checkpoint-2 at step 2" in out.out
    assert "this pickle would run code" not in out.out + out.err


def test_a_damaged_checkpoint_asked_for_by_path_is_an_error(run, capsys):
    ckpt = run / "checkpoints" / "checkpoint-4"
    (ckpt / "model.safetensors").write_bytes(b"\0" * 64)
    assert main(args(run, 6) + ["--resume", str(ckpt)]) == 1
    assert f"{ckpt}: model.safetensors has 64 bytes" in capsys.readouterr().err


def test_nothing_restorable_is_an_error_not_a_fresh_start(run, capsys):
    for ckpt in list_checkpoints(run / "checkpoints"):
        (ckpt / "trainer_state.json").write_text((ckpt / "trainer_state.json").read_text() + " ")
    assert main(args(run, 6) + ["--resume", "latest"]) == 1
    err = capsys.readouterr().err
    assert "skipping checkpoint-4: trainer_state.json has" in err and "can be restored whole" in err


def test_an_rng_state_that_does_not_load_is_an_error_not_a_silent_partial_resume(run, capsys):
    """Without a manifest (a pre-manifest checkpoint) the RNG file is still checked before anything is restored."""
    ckpt = run / "checkpoints" / "checkpoint-4"
    (ckpt / MANIFEST_FILE).unlink()
    (ckpt / "random_states_0.pkl").write_bytes(pickle.dumps(_Evil()))
    assert main(args(run, 6) + ["--resume", "latest"]) == 1
    out = capsys.readouterr()
    assert "resuming from checkpoint-4 unverified" in out.err
    assert "random_states_0.pkl cannot be restored" in out.err and "nothing was restored" in out.err
    assert "this pickle would run code" not in out.out + out.err
