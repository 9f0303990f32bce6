"""CPU speed levers of a training run: channels_last memory format and torch.compile (inductor).

Both keep the model's parameters, their names, shapes and the saved layout as without them, so a run
can switch them on or off between stages and resume across the switch; the values differ only as two
runs on different kernels do (a compiled graph also draws its noise with inductor's own RNG). Measured
per preset in benchmarks/bench_levers.py and bench_vae_peers.py; each preset turns on the ones that
paid, and the bundle's facelab.json records the ones in effect (training.speed_levers).
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Callable

import torch

# inductor's CPU backend compiles C++ with this compiler (its config reads CXX the same way)
_DEFAULT_CXX = "clang++" if sys.platform == "darwin" else "g++"


def compiler_missing() -> str | None:
    """Why torch.compile's CPU backend cannot run here (no C++ compiler), or None when it can."""
    cxx = os.environ.get("CXX", _DEFAULT_CXX)
    if shutil.which(cxx) is None:
        return (f"train.compile: the C++ compiler {cxx!r} that torch.compile's inductor backend needs was not "
                f"found, so training runs uncompiled (same recipe, slower). Install one (Debian/Ubuntu: "
                f"apt-get install g++) or point CXX at it; or set train.compile=false to silence this.")
    return None


def apply_speed_options(model: torch.nn.Module, channels_last: bool, compile_model: bool,
                        say: Callable[[str], None] = print) -> list[str]:
    """Switch on the requested levers in place; returns the ones in effect ("channels_last", "compile")."""
    active = []
    if channels_last:
        model.to(memory_format=torch.channels_last)  # 4-D weights only; names and values unchanged
        active.append("channels_last")
    if compile_model:
        why = getattr(model, "compile_unsupported", None) or compiler_missing()
        if why:
            say(why)
        else:
            # An error while dynamo/inductor compile the forward falls back to eager with a warning
            # instead of stopping the run (process-wide setting; backward graphs compile lazily and
            # can still raise from backward()).
            torch._dynamo.config.suppress_errors = True
            model.compile()  # in place: forward compiled, state_dict keys unchanged (no _orig_mod prefix)
            active.append("compile")
    return active


def batch_channels_last(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Images of a batch in channels_last layout (other entries as they are)."""
    return {k: v.contiguous(memory_format=torch.channels_last) if torch.is_tensor(v) and v.dim() == 4 else v
            for k, v in batch.items()}
