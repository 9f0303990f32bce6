"""β schedules (constant, warm-up, cyclical, capacity) and LR schedules."""

import pytest
import torch

from facelab.models.schedules import LR_SCHEDULES, BetaSchedule, inverse_sigmoid_factor, make_lr_scheduler


def test_constant_is_beta_at_every_step():
    s = BetaSchedule("constant", beta=4.0)
    assert [s.value(t) for t in (0, 10, 10_000)] == [4.0, 4.0, 4.0]
    assert s.capacity(100) == 0.0


def test_warmup_ramps_linearly_then_holds():
    s = BetaSchedule("warmup", beta=2.0, warmup_steps=100)
    assert s.value(0) == 0.0
    assert s.value(50) == pytest.approx(1.0)
    assert s.value(100) == pytest.approx(2.0)
    assert s.value(5000) == pytest.approx(2.0)


def test_warmup_of_zero_steps_is_constant():
    assert BetaSchedule("warmup", beta=3.0, warmup_steps=0).value(0) == 3.0


def test_cyclical_restarts_every_cycle():
    s = BetaSchedule("cyclical", beta=1.0, cycle_steps=100, ratio=0.5)
    assert s.value(0) == 0.0
    assert s.value(25) == pytest.approx(0.5)
    assert s.value(50) == pytest.approx(1.0)
    assert s.value(99) == pytest.approx(1.0)
    assert s.value(100) == 0.0
    assert s.value(125) == pytest.approx(0.5)


def test_capacity_rises_to_c_max_and_weights_the_gap():
    s = BetaSchedule("capacity", gamma=10.0, c_max=20.0, c_steps=100)
    assert [s.capacity(t) for t in (0, 50, 100, 500)] == pytest.approx([0.0, 10.0, 20.0, 20.0])
    assert s.value(30) == 10.0
    kl = torch.tensor([4.0, 16.0])
    # at step 50, C = 10: γ·|KL − C| = 10·[6, 6]
    assert torch.allclose(s.kl_term(kl, 50), torch.tensor([60.0, 60.0]))


def test_kl_term_is_beta_times_kl_for_other_kinds():
    s = BetaSchedule("warmup", beta=4.0, warmup_steps=10)
    assert s.kl_term(torch.tensor(3.0), 5).item() == pytest.approx(6.0)


@pytest.mark.parametrize("kwargs", [{"kind": "exponential"}, {"ratio": 0.0}, {"beta": -1.0}, {"cycle_steps": 0}])
def test_invalid_schedules_are_rejected(kwargs):
    with pytest.raises(ValueError):
        BetaSchedule(**kwargs)


def _lrs(name: str, warmup: int, total: int) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_lr_scheduler(opt, name, warmup_steps=warmup, total_steps=total)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_diffusers_linear_schedule_warms_up_then_decays():
    lrs = _lrs("linear", warmup=10, total=110)
    assert lrs[0] == 0.0 and lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.5)
    assert lrs[-1] < 0.02


def test_inverse_sigmoid_decays_from_one_towards_zero():
    lrs = _lrs("inverse_sigmoid", warmup=0, total=100)
    assert lrs[0] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert lrs[50] == pytest.approx(inverse_sigmoid_factor(50, 100)) and 0.4 < lrs[50] < 0.6
    assert lrs[-1] < 0.02


def test_lr_schedule_names_and_unknown_name():
    assert {"constant", "cosine", "linear", "inverse_sigmoid"} <= set(LR_SCHEDULES)
    with pytest.raises(ValueError):
        _lrs("nope", 0, 10)


def test_final_beta_moves_from_the_warmed_up_beta_to_the_final_one():
    s = BetaSchedule("warmup", beta=4.0, warmup_steps=100, final_beta=1.0, final_start=1000, final_steps=200)
    assert [s.value(t) for t in (50, 999, 1000, 1100, 1200, 5000)] == pytest.approx([2.0, 4.0, 4.0, 2.5, 1.0, 1.0])
    at_once = BetaSchedule("constant", beta=4.0, final_beta=1.0, final_start=1000)
    assert (at_once.value(999), at_once.value(1000)) == (4.0, 1.0)
    assert at_once.kl_term(torch.tensor(2.0), 1000).item() == pytest.approx(2.0)


@pytest.mark.parametrize("kwargs", [{"kind": "cyclical", "final_beta": 1.0}, {"kind": "capacity", "final_beta": 1.0},
                                    {"final_beta": -1.0}, {"final_beta": 1.0, "final_steps": -5}])
def test_invalid_final_beta_is_rejected(kwargs):
    with pytest.raises(ValueError):
        BetaSchedule(**kwargs)
