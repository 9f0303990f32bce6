"""β schedules for VAE losses (constant, warm-up, cyclical, capacity) and LR schedules.

The β schedule is a pure function of the training step, evaluated inside the model's loss at
the ``step`` the training loop passes to ``forward``: no callback has to reach into the model
(seed 003's Keras ``BetaScheduler`` updated a copy the loss never read).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.optimization import SchedulerType, get_scheduler

BETA_KINDS = ("constant", "warmup", "cyclical", "capacity")
#: LR schedule names: diffusers' get_scheduler names plus seed 002's inverse-sigmoid decay
LR_SCHEDULES = tuple(s.value for s in SchedulerType if s.value != "piecewise_constant") + ("inverse_sigmoid",)


@dataclass(frozen=True)
class BetaSchedule:
    """KL weight as a function of the step.

    - ``constant``: β at every step.
    - ``warmup``: β·min(1, step / warmup_steps) (monotonic KL annealing, Bowman et al. 2016).
    - ``cyclical``: each cycle of ``cycle_steps`` ramps 0 → β linearly over the first ``ratio``
      of the cycle, then holds β (Fu et al. 2019).
    - ``capacity``: the KL term is γ·|KL − C(step)| with C rising linearly from 0 to ``c_max``
      nats over ``c_steps`` steps (Burgess et al. 2018); ``value`` returns γ, the weight applied.

    ``final_beta`` (constant and warm-up only) then moves β linearly to ``final_beta`` over
    ``final_steps`` steps from step ``final_start`` (0 steps: at once): a high β first aligns the
    large factors with axes, a low β then buys reconstruction without undoing that (on Ada-GVAE,
    BENCHMARKS.md: recon MSE, FactorVAE, MIG and DCI all improve; the β-VAE metric does not).
    """

    kind: str = "constant"
    beta: float = 1.0
    warmup_steps: int = 0
    cycle_steps: int = 10_000
    ratio: float = 0.5
    gamma: float = 1000.0
    c_max: float = 25.0
    c_steps: int = 100_000
    final_beta: float | None = None
    final_start: int = 0
    final_steps: int = 0

    def __post_init__(self) -> None:
        if self.kind not in BETA_KINDS:
            raise ValueError(f"unknown beta schedule {self.kind!r}; expected one of {BETA_KINDS}")
        if self.beta < 0 or self.gamma < 0 or self.c_max < 0:
            raise ValueError("beta, gamma and c_max must be >= 0")
        if self.warmup_steps < 0 or self.cycle_steps < 1 or self.c_steps < 0:
            raise ValueError("warmup_steps and c_steps must be >= 0, cycle_steps >= 1")
        if not 0.0 < self.ratio <= 1.0:
            raise ValueError(f"ratio must be in (0, 1], got {self.ratio}")
        if self.final_beta is not None:
            if self.kind not in ("constant", "warmup"):
                raise ValueError(f"final_beta needs the constant or warmup schedule, not {self.kind!r}")
            if self.final_beta < 0 or self.final_start < 0 or self.final_steps < 0:
                raise ValueError("final_beta, final_start and final_steps must be >= 0")

    def value(self, step: int) -> float:
        """The weight applied to the KL term at this step (γ for the capacity schedule)."""
        step = max(int(step), 0)
        if self.kind in ("constant", "warmup"):
            beta = float(self.beta) * (_ramp(step, self.warmup_steps) if self.kind == "warmup" else 1.0)
            if self.final_beta is None or step < self.final_start:
                return beta
            return beta + (float(self.final_beta) - beta) * _ramp(step - self.final_start, self.final_steps)
        if self.kind == "cyclical":
            phase = (step % self.cycle_steps) / self.cycle_steps
            return float(self.beta) * min(1.0, phase / self.ratio)
        return float(self.gamma)

    def capacity(self, step: int) -> float:
        """Target KL C(step) in nats for the capacity schedule; 0 for the others."""
        if self.kind != "capacity":
            return 0.0
        return float(self.c_max) * _ramp(max(int(step), 0), self.c_steps)

    def kl_term(self, kl: torch.Tensor, step: int) -> torch.Tensor:
        """The KL part of the loss at this step: β·KL, or γ·|KL − C| for capacity annealing."""
        weight = self.value(step)
        if self.kind == "capacity":
            return weight * (kl - self.capacity(step)).abs()
        return weight * kl


def _ramp(step: int, steps: int) -> float:
    """Linear 0 → 1 over ``steps`` steps (1 at once when steps is 0)."""
    return 1.0 if steps <= 0 else min(1.0, step / steps)


def inverse_sigmoid_factor(step: int, total_steps: int, steepness: float = 10.0) -> float:
    """LR multiplier falling along an inverse sigmoid from 1 at step 0 towards 0 at total_steps (seed 002)."""
    from facelab.models.progressive import inverse_sigmoid_decay  # one formula for both callers

    return inverse_sigmoid_decay(step, max(total_steps, 1), steepness)


def make_lr_scheduler(optimizer: torch.optim.Optimizer, name: str = "constant", warmup_steps: int = 0,
                      total_steps: int = 1) -> torch.optim.lr_scheduler.LRScheduler:
    """An LR scheduler by name: diffusers' get_scheduler names, or "inverse_sigmoid" (with linear warm-up)."""
    if name not in LR_SCHEDULES:
        raise ValueError(f"unknown LR schedule {name!r}; expected one of {LR_SCHEDULES}")
    if name == "inverse_sigmoid":
        decay_steps = max(total_steps - warmup_steps, 1)

        def factor(step: int) -> float:
            if step < warmup_steps:
                return (step + 1) / warmup_steps
            return inverse_sigmoid_factor(step - warmup_steps, decay_steps)

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return get_scheduler(name, optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps)
