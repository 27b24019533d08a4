import math

import numpy as np
import pytest
import torch
from torch import nn

from mlrepro.data.loader import TensorLoader
from mlrepro.engine import Learner, get_rng_state
from mlrepro.engine.lr_finder import lr_find, suggest
from mlrepro.plotting import plot_lr_find


def problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(512, 16, generator=g)
    y = (x[:, :5] @ torch.randn(5, 5, generator=g)).argmax(1)
    return TensorLoader(x, y, 32, shuffle=True, seed=seed)


def learner_with_state():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(16, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 5)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=10 * 16)
    learner = Learner(model, opt, nn.CrossEntropyLoss(), scheduler=sched, device="cpu")
    learner.fit(problem(), 1)  # the optimizer now has moments, the scheduler a position
    return learner


def flat(obj, prefix=""):
    """Every tensor/number inside nested dicts/lists, keyed by path."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flat(v, f"{prefix}/{k}"))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(flat(v, f"{prefix}/{i}"))
    else:
        out[prefix] = obj.clone() if isinstance(obj, torch.Tensor) else obj
    return out


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


def test_sweep_restores_model_optimizer_scheduler_and_rng_bit_for_bit():
    learner = learner_with_state()
    before = {
        "model": flat(learner.model.state_dict()),
        "opt": flat(learner.optimizer.state_dict()),
        "sched": flat(learner.scheduler.state_dict()),
        "rng": flat(get_rng_state()),
        "lr": learner.optimizer.param_groups[0]["lr"],
        "epoch": learner.epoch,
        "step": learner.global_step,
    }
    result = lr_find(learner, problem(1), start_lr=1e-6, end_lr=10, num_steps=60)
    after = {
        "model": flat(learner.model.state_dict()),
        "opt": flat(learner.optimizer.state_dict()),
        "sched": flat(learner.scheduler.state_dict()),
        "rng": flat(get_rng_state()),
        "lr": learner.optimizer.param_groups[0]["lr"],
        "epoch": learner.epoch,
        "step": learner.global_step,
    }
    for key in ("model", "opt", "sched", "rng"):
        assert_same(before[key], after[key])
    assert (
        before["lr"] == after["lr"]
        and before["epoch"] == after["epoch"]
        and before["step"] == after["step"]
    )
    assert len(result.lrs) > 10
    # Training afterwards proceeds as if the sweep never happened.
    learner.fit(problem(), 2)
    twin = learner_with_state()  # reseeds the global RNG to where `learner` stood before the sweep
    twin.fit(problem(), 2)
    for a, b in zip(learner.model.state_dict().values(), twin.model.state_dict().values()):
        assert torch.equal(a, b)


def test_sweep_is_exponential_stops_on_divergence_and_suggests_a_usable_lr(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 5))
    learner = Learner(
        model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), device="cpu"
    )
    res = lr_find(learner, problem(), start_lr=1e-5, end_lr=1e3, num_steps=150)
    ratios = np.diff(np.log(res.lrs))
    assert np.allclose(ratios, ratios[0])
    assert res.stopped_early and len(res.lrs) < 150
    assert set(res.suggestions) == {"valley", "steepest", "minimum/10", "blog"}
    assert 1e-3 <= res.suggestion <= 3.0
    # A short training run at the suggestion beats one at start_lr.
    plot_lr_find(res, tmp_path / "lr_find.png")
    assert (tmp_path / "lr_find.png").stat().st_size > 5000


def synthetic_curve(noise, seed, n=100):
    """Loss falls around lr=1e-3 (steepest there), bottoms out near 1e-1, explodes after 3e-1."""
    lrs = np.logspace(-7, 1, n)
    x = np.log10(lrs)
    loss = 2.3 - 2.0 / (1 + np.exp(-2.5 * (x + 3))) + np.where(x > -1, 3 * (x + 1) ** 2, 0)
    loss = loss + np.random.default_rng(seed).normal(0, noise, n)
    # Smooth as lr_find does (bias-corrected EMA).
    avg, out = 0.0, []
    for i, v in enumerate(loss):
        avg = 0.98 * avg + 0.02 * v
        out.append(avg / (1 - 0.98 ** (i + 1)))
    i_end = next((i for i, v in enumerate(out) if v > 4 * min(out[: i + 1])), n)
    return lrs[:i_end], out[:i_end]


@pytest.mark.parametrize("noise", [0.0, 0.05, 0.15])
def test_default_suggestion_is_robust_to_noise(noise):
    picks = {name: [] for name in ("valley", "steepest", "minimum/10", "blog")}
    for seed in range(20):
        for name, lr in suggest(*synthetic_curve(noise, seed)).items():
            picks[name].append(math.log10(lr))
    # Every seed's default pick lands on the descending part, below the minimum (1e-1).
    assert all(-4.5 <= v <= -1.2 for v in picks["valley"]), picks["valley"]
    assert all(-4.5 <= v <= -1.0 for v in picks["steepest"]), picks["steepest"]
    assert np.std(picks["valley"]) < 0.6


def test_bad_arguments():
    learner = learner_with_state()
    with pytest.raises(ValueError, match="start_lr < end_lr"):
        lr_find(learner, problem(), start_lr=1, end_lr=1e-3)
    with pytest.raises(ValueError, match="unknown suggestion 'best'"):
        lr_find(learner, problem(), suggestion="best")
