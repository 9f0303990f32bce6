"""Crash-safe training checkpoints on top of ``accelerator.save_state``.

Layout: ``<output_dir>/checkpoints/checkpoint-<step>/`` holding accelerate's files (model weights
as safetensors; optimizer, scheduler and RNG states as torch files that accelerate reloads with
``weights_only=True``) plus ``trainer_state.json``. A checkpoint is written under a hidden temp
name and renamed into place only when complete, and rotation renames before deleting, so a crash
at any moment never leaves a ``checkpoint-<step>`` folder that loads wrong.

``manifest.json`` (every file's size and SHA-256) is written last. ``--resume latest`` takes the
newest checkpoint whose files still match it, says which and why newer ones were passed over (a
file truncated or replaced since); restoring checks every RNG state loads before anything is
restored, so a checkpoint is restored whole or not at all (accelerate alone skips a bad RNG file
silently). Checkpoints from before manifests are accepted unverified, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from accelerate import Accelerator

from training.train_utils import TrainingError

STATE_FILE = "trainer_state.json"
MANIFEST_FILE = "manifest.json"
RNG_FILES = "random_states_*.pkl"  # accelerate's per-process RNG states
_NAME = re.compile(r"^checkpoint-(\d+)$")


class CheckpointError(TrainingError):
    """A checkpoint cannot be restored whole; the message names the file and what to do."""


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
                    total_limit: int | None, extra: Callable[[Path], Any] | None = None) -> Path:
    """Save accelerate state + trainer_state.json as checkpoint-<step> (write, then rename); rotate.

    extra(folder), on the main process, adds files of its own (the weight average) before the
    manifest is written, so they are verified and published with the rest.
    """
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
        if extra is not None:
            extra(tmp)
        # the state file marks the folder complete; the manifest, written after it, makes it verifiable
        (tmp / STATE_FILE).write_text(json.dumps(asdict(state), indent=2))
        write_manifest(tmp)
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


def resolve_resume(resume: str, output_dir: str | Path, say: Callable[[str], None] | None = None) -> Path | None:
    """--resume value -> checkpoint folder: 'latest' (the newest that verifies; None when there is none yet)
    or a path (which must verify)."""
    say = say or _warn
    if resume == "latest":
        found = list_checkpoints(checkpoint_root(output_dir))
        path, notes = newest_verified(found)
        for note in notes:
            say(note)
        if found and path is None:
            raise CheckpointError(f"no checkpoint under {checkpoint_root(output_dir)} can be restored whole "
                                  "(see above); start again without --resume, or restore the files")
        return path
    path = Path(resume)
    read_state(path)  # fail early, before any model is built, on a wrong path
    problem = verify_checkpoint(path)
    if problem is not None and not problem.startswith(UNVERIFIED):
        raise CheckpointError(f"{path}: {problem}; pass another checkpoint or --resume latest")
    return path


def load_checkpoint(accelerator: Accelerator, path: str | Path) -> TrainerState:
    """Restore models, optimizers, schedulers and RNG states from path, whole or not at all; its TrainerState."""
    state = read_state(path)
    _check_rng_states(Path(path))
    accelerator.load_state(str(path))
    state.last_checkpoint = str(path)
    return state


# ---------------------------------------------------------------- verification


UNVERIFIED = "unverified"


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path) -> Path:
    """folder/manifest.json: size and SHA-256 of every other file (written last, atomically)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_FILE)
    entries = {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)} for p in files}
    tmp = folder / (MANIFEST_FILE + ".tmp")
    tmp.write_text(json.dumps({"files": entries}, indent=1, sort_keys=True))
    os.replace(tmp, folder / MANIFEST_FILE)
    return folder / MANIFEST_FILE


def verify_checkpoint(folder: str | Path) -> str | None:
    """None when every file matches the manifest; else what is wrong (UNVERIFIED... for a pre-manifest one)."""
    folder = Path(folder)
    manifest = folder / MANIFEST_FILE
    if not manifest.is_file():
        return f"{UNVERIFIED}: it has no {MANIFEST_FILE} (written by an older facelab)"
    try:
        entries = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError, TypeError) as err:
        return f"{MANIFEST_FILE} is unreadable ({err})"
    for name, entry in sorted(entries.items()):
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != entry["size"]:
            return f"{name} has {path.stat().st_size:,} bytes, {entry['size']:,} when saved (truncated or replaced)"
        if _sha256(path) != entry["sha256"]:
            return f"{name} changed since it was saved (its SHA-256 differs)"
    return None


def newest_verified(checkpoints: list[Path]) -> tuple[Path | None, list[str]]:
    """The newest checkpoint that verifies (or, failing a manifest, predates manifests), and notes on the rest."""
    notes: list[str] = []
    for path in reversed(checkpoints):
        problem = verify_checkpoint(path)
        if problem is None:
            return path, notes + ([f"resuming from {path.name}, the newest checkpoint that verifies"] if notes else [])
        if problem.startswith(UNVERIFIED):
            return path, notes + [f"resuming from {path.name} {problem}: its files cannot be checked"]
        notes.append(f"skipping {path.name}: {problem}")
    return None, notes


def _check_rng_states(folder: Path) -> None:
    """Every RNG state file loads the way accelerate loads it (weights only), before anything is restored.

    accelerate.load_state skips an RNG file it cannot load with a log line only: the run would then
    continue from the right weights but another random stream, and never match an uninterrupted run.
    """
    from accelerate.utils import load

    for path in sorted(folder.glob(RNG_FILES)):
        try:
            states = load(path)
            missing = {"random_state", "numpy_random_seed", "torch_manual_seed"} - set(states)
        except Exception as err:  # noqa: BLE001 - any failure means this state cannot be restored
            raise CheckpointError(f"{path} cannot be restored ({type(err).__name__}: {str(err)[:200]}); "
                                  "a partial resume would not reproduce the run, so nothing was restored") from err
        if missing:
            raise CheckpointError(f"{path} lacks {sorted(missing)}; nothing was restored")
