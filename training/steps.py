"""One optimisation step per model family, called through the (DDP-wrapped) model's forward.

Encoder models (VAE, cVAE, HVAE): one loss, one optimizer, optional clipping and the HVAE's
VD-VAE update guard. GANs: a discriminator phase, then a generator phase, each with its own
optimizer; gradients are zeroed between phases so no optimizer sees the other phase's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from accelerate import Accelerator
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

GAN_PHASES = ("discriminator", "generator")


@dataclass
class Trainables:
    """The prepared model with its optimizers and LR schedulers, keyed alike."""

    model: torch.nn.Module
    optimizers: dict[str, Optimizer]
    schedulers: dict[str, LRScheduler]
    grad_clip: float | None = None


def _zero(parts: Trainables) -> None:
    for opt in parts.optimizers.values():
        opt.zero_grad(set_to_none=True)


def _scalars(out: dict[str, torch.Tensor], rename_loss: str | None = None) -> dict[str, torch.Tensor]:
    """Detached float scalars of a loss dict; "loss" renamed for GAN phases (d_loss, g_loss)."""
    res = {}
    for key, value in out.items():
        if rename_loss and key == "loss":
            key = rename_loss
        res[key] = torch.as_tensor(value).detach().float().reshape(())
    return res


def encoder_step(accelerator: Accelerator, parts: Trainables, batch: dict[str, torch.Tensor],
                 step: int, unwrapped: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Forward, backward, clip, guard, optimizer and scheduler step for a single-loss model."""
    (name,) = parts.optimizers
    out = parts.model(batch, step=step)
    accelerator.backward(out["loss"])
    logs = _scalars(out)
    if parts.grad_clip is not None:
        # clip_grad_norm_ returns the norm before clipping: what VD-VAE's guard looks at
        norm = accelerator.clip_grad_norm_(parts.model.parameters(), parts.grad_clip)
        logs["grad_norm"] = torch.as_tensor(norm).detach().float().reshape(())
        guard = getattr(unwrapped, "should_skip_update", None)
        if guard is not None:
            skipped = bool(guard(norm))
            logs["skipped_updates"] = torch.tensor(float(unwrapped.skipped_updates))
            if skipped:
                # grads were all-reduced, so every rank takes the same decision
                _zero(parts)
                parts.schedulers[name].step()
                return logs
    parts.optimizers[name].step()
    parts.schedulers[name].step()
    _zero(parts)
    return logs


def gan_step(accelerator: Accelerator, parts: Trainables, batch: dict[str, torch.Tensor],
             step: int, unwrapped: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Discriminator phase then generator phase; returns both phases' scalars."""
    logs: dict[str, torch.Tensor] = {}
    for phase in GAN_PHASES:
        _zero(parts)
        out = parts.model(batch, step=step, phase=phase)
        accelerator.backward(out["loss"])
        if parts.grad_clip is not None:
            accelerator.clip_grad_norm_(parts.model.parameters(), parts.grad_clip)
        parts.optimizers[phase].step()
        parts.schedulers[phase].step()
        tag = "d_loss" if phase == "discriminator" else "g_loss"
        for key, value in _scalars(out, rename_loss=tag).items():
            if key in logs and key == "d_fake":
                key = "d_fake_g"  # D's score of the generator-phase fakes, after D's update
            logs.setdefault(key, value)  # alpha, resolution: the same in both phases
    _zero(parts)
    return logs


def grad_clip_for(configured: float | None, unwrapped: torch.nn.Module) -> float | None:
    """train.gradient_clip, else the model's own grad_clip (HVAE); inf keeps the guard's norm only."""
    if configured is not None:
        return float(configured)
    own = getattr(unwrapped.config, "grad_clip", None) if hasattr(unwrapped, "config") else None
    if own is not None:
        return float(own) if own > 0 else math.inf
    return math.inf if hasattr(unwrapped, "should_skip_update") else None
