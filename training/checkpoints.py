"""Crash-safe training checkpoints on top of ``accelerator.save_state``.

Layout: ``<output_dir>/checkpoints/checkpoint-<step>/`` holding accelerate's files (model weights
as safetensors; optimizer, scheduler and RNG states as torch files that accelerate reloads with
``weights_only=True``) plus ``trainer_state.json``. A checkpoint is written under a hidden temp
name and renamed into place only when complete, and rotation renames before deleting, so a crash
at any moment never leaves a ``checkpoint-<step>`` folder that loads wrong.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from accelerate import Accelerator

STATE_FILE = "trainer_state.json"
_NAME = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class TrainerState:
    """Where training stands: saved in every checkpoint, restored by --resume."""

    step: int = 0
    images_seen: int = 0
    batch_size: int = 0
    last_checkpoint: str | None = None
    seconds: float = 0.0  # training wall time over every resumed part of the run, for the card


def checkpoint_root(output_dir: str | Path) -> Path:
    """The folder holding a run's checkpoints."""
    return Path(output_dir) / "checkpoints"


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under root (temp and half-deleted folders excluded), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if (m := _NAME.match(p.name)) and (p / STATE_FILE).is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest complete checkpoint under root, or None."""
    found = list_checkpoints(root)
    return found[-1] if found else None


def remove_dir(path: Path) -> None:
    """Delete a folder by renaming it out of the checkpoint namespace first (atomic), then rmtree."""
    if not path.exists():
        return
    trash = path.with_name(f".trash-{path.name}")
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def save_checkpoint(accelerator: Accelerator, output_dir: str | Path, state: TrainerState,
                    total_limit: int | None) -> Path:
    """Save accelerate state + trainer_state.json as checkpoint-<step> (write, then rename); rotate."""
    root = checkpoint_root(output_dir)
    final = root / f"checkpoint-{state.step}"
    tmp = root / f".tmp-checkpoint-{state.step}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)  # debris of a crash during an earlier save
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    # every rank has written its RNG file before the folder is published
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        state.last_checkpoint = str(final)
        # the state file is written last: its presence marks the folder complete
        (tmp / STATE_FILE).write_text(json.dumps(asdict(state), indent=2))
        remove_dir(final)
        os.replace(tmp, final)
        if total_limit is not None and total_limit > 0:
            for old in list_checkpoints(root)[:-total_limit]:
                remove_dir(old)
    state.last_checkpoint = str(final)
    accelerator.wait_for_everyone()
    return final


def read_state(path: str | Path) -> TrainerState:
    """The TrainerState stored in a checkpoint folder (clear error when it is not one)."""
    file = Path(path) / STATE_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{path} is not a complete facelab checkpoint (no {STATE_FILE})")
    data = json.loads(file.read_text())
    return TrainerState(**{k: data[k] for k in asdict(TrainerState()) if k in data})


def resolve_resume(resume: str, output_dir: str | Path) -> Path | None:
    """--resume value -> checkpoint folder: 'latest' (None when there is none yet) or a path."""
    if resume == "latest":
        return latest_checkpoint(checkpoint_root(output_dir))
    path = Path(resume)
    read_state(path)  # fail early, before any model is built, on a wrong path
    return path


def load_checkpoint(accelerator: Accelerator, path: str | Path) -> TrainerState:
    """Restore models, optimizers, schedulers and RNG states from path; return its TrainerState."""
    state = read_state(path)
    accelerator.load_state(str(path))
    state.last_checkpoint = str(path)
    return state
