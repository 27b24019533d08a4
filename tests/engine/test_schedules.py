import math

import pytest
import torch

from mlrepro.engine import Learner
from mlrepro.engine.schedules import (
    build_scheduler,
    cosine_restarts_factor,
    trace,
    warmup_cosine_factor,
)


def test_onecycle_hits_its_knots_and_cycles_momentum_inversely():
    lrs, moms = trace("onecycle", epochs=10, steps_per_epoch=10, lr=0.1, pct_start=0.3)
    peak = max(range(100), key=lrs.__getitem__)
    assert lrs[0] == pytest.approx(0.1 / 25) and lrs[peak] == pytest.approx(0.1, rel=1e-3)
    assert 28 <= peak <= 30
    assert lrs[-1] < 0.1 / 25 / 1000
    assert moms[0] == pytest.approx(0.95) and moms[peak] == pytest.approx(0.85, abs=1e-3)
    three, _ = trace("onecycle", epochs=10, steps_per_epoch=10, three_phase=True)
    assert three[59] == pytest.approx(0.1 / 25, rel=0.05)  # back to the start before annihilation


def test_warm_restarts_with_t_mult_and_decaying_peaks():
    lrs, _ = trace(
        "cosine-restarts", epochs=7, steps_per_epoch=10, lr=1.0, cycle_epochs=1, t_mult=2
    )
    # Cycles of 10, 20, 40 steps: restarts at 10 and 30.
    assert lrs[10] == pytest.approx(1.0) and lrs[30] == pytest.approx(1.0)
    assert lrs[9] < 0.05 and lrs[29] < 0.02
    dec, _ = trace(
        "cosine-restarts-decay", epochs=7, steps_per_epoch=10, lr=1.0, t_mult=2, restart_decay=0.5
    )
    assert dec[0] == 1.0 and dec[10] == pytest.approx(0.5) and dec[30] == pytest.approx(0.25)
    assert cosine_restarts_factor(5, 10) == pytest.approx(0.5)
    assert cosine_restarts_factor(15, 10, t_mult=2.0) == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 0.25))
    )


def test_warmup_cosine_and_piecewise():
    assert warmup_cosine_factor(0, 100, 10) == pytest.approx(0.1)
    assert warmup_cosine_factor(9, 100, 10) == 1.0
    assert warmup_cosine_factor(55, 100, 10) == pytest.approx(0.5)
    lrs, _ = trace("piecewise", epochs=200, steps_per_epoch=2, lr=0.1)
    assert lrs[119] == 0.1 and lrs[120] == pytest.approx(0.1 * 0.2)  # epoch 60 starts at step 120
    assert lrs[239] == pytest.approx(0.02) and lrs[240] == pytest.approx(0.1 * 0.2**2)
    assert lrs[-1] == pytest.approx(0.1 * 0.2**3)


def test_bad_settings_are_refused_up_front():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="unknown schedule 'linear'; valid: constant, onecycle"):
        build_scheduler("linear", opt, epochs=1, steps_per_epoch=1)
    with pytest.raises(ValueError, match="milestones"):
        build_scheduler("piecewise", opt, epochs=30, steps_per_epoch=1)
    with pytest.raises(ValueError, match="t_mult must be an integer"):
        build_scheduler("cosine-restarts", opt, epochs=3, steps_per_epoch=1, t_mult=1.5)


def test_onecycle_too_short_for_the_fit_fails_before_training():
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = build_scheduler("onecycle", opt, epochs=2, steps_per_epoch=4)
    learner = Learner(model, opt, torch.nn.CrossEntropyLoss(), scheduler=sched, device="cpu")
    data = [(torch.randn(3, 2), torch.tensor([0, 1, 0]))] * 4
    with pytest.raises(
        ValueError, match="OneCycleLR has 8 of its 8 steps left, but training to epoch 3"
    ):
        learner.fit(data, 3)
    assert learner.epoch == 0
    learner.fit(data, 2)  # the right length runs to the end without "tried to step" errors
    assert sched.last_epoch == 8
