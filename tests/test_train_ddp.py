"""Real two-process DDP on CPU (gloo) through `accelerate launch --multi_gpu --num_processes 2`.

Each rank records the dataset indices of every batch it trained on and its final weights
(train.trace_ranks): the global batch must be split between the ranks, not duplicated, and
both ranks must end with bit-identical weights.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from facelab.hub import WEIGHTS_FILE
from training.data import EpochSampler

ROOT = Path(__file__).resolve().parents[1]
LENGTH, BATCH, STEPS = 16, 4, 6  # 4 global batches per epoch: the run crosses an epoch boundary


def free_port() -> int:
    """A TCP port nobody listens on right now, for the rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(out: Path, kind: str, *overrides: str) -> subprocess.CompletedProcess:
    """accelerate launch, two CPU processes, one thread each."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), str(ROOT / "training" / "train.py"),
           "--set", f"model.kind={kind}", "data.image_size=16", f"data.length={LENGTH}",
           f"train.output_dir={out}", f"train.max_steps={STEPS}", f"train.batch_size={BATCH}",
           "train.trace_ranks=true", "train.report_to=none", "train.sample_every=3", "train.checkpoint_every=3",
           "train.num_samples=4", *overrides]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def read_trace(out: Path, rank: int) -> dict[int, list[int]]:
    lines = (out / "ranks" / f"rank{rank}.jsonl").read_text().splitlines()
    return {rec["step"]: rec["indices"] for rec in map(json.loads, lines)}


@pytest.mark.slow
@pytest.mark.parametrize("kind, tiny", [
    ("vae", ["model.params.latent_dim=8", "model.params.base_channels=8", "model.params.max_channels=16"]),
    ("dcgan", ["model.params.nz=8", "model.params.ngf=8", "model.params.ndf=8"]),  # find_unused_parameters path
])
def test_two_ranks_split_the_global_batch_and_end_identical(tmp_path, kind, tiny):
    out = tmp_path / kind
    proc = launch(out, kind, *tiny)
    assert proc.returncode == 0, proc.stderr[-3000:]

    traces = [read_trace(out, 0), read_trace(out, 1)]
    assert sorted(traces[0]) == sorted(traces[1]) == list(range(STEPS))
    sampler = EpochSampler(LENGTH, seed=0)
    steps_per_epoch = LENGTH // BATCH
    for step in range(STEPS):
        a, b = traces[0][step], traces[1][step]
        assert len(a) == len(b) == BATCH // 2  # each rank gets half the global batch
        assert not set(a) & set(b)  # split, not duplicated
        epoch, k = divmod(step, steps_per_epoch)
        global_batch = sampler.permutation(epoch)[k * BATCH:(k + 1) * BATCH].tolist()
        assert a + b == global_batch  # together, exactly the seeded global batch of that step

    w0 = load_file(str(out / "ranks" / "rank0.safetensors"))
    w1 = load_file(str(out / "ranks" / "rank1.safetensors"))
    assert w0.keys() == w1.keys()
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    released = load_file(str(out / "bundle" / WEIGHTS_FILE))
    assert all(torch.equal(released[k], w0[k]) for k in released)
    meta = json.loads((out / "bundle" / "facelab.json").read_text())
    assert meta["training"]["num_processes"] == 2 and meta["training"]["images_seen"] == STEPS * BATCH
    assert (out / "checkpoints" / "checkpoint-6" / "random_states_1.pkl").is_file()  # rank 1 saved its RNG


def test_two_processes_asked_without_multi_gpu_is_refused_with_the_command_that_works(tmp_path):
    """Without --multi_gpu accelerate starts one process even when two were asked: say so, do not train."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", str(ROOT / "training" / "train.py"),
           "--set", "model.kind=vae", "data.image_size=16", "data.length=8", f"train.output_dir={tmp_path / 'run'}",
           "train.max_steps=1", "train.batch_size=4", "train.report_to=none"]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "asked for 2 processes but started 1" in done.stderr
    assert "accelerate launch --multi_gpu --num_processes 2" in done.stderr
    assert not (tmp_path / "run" / "bundle").exists()
