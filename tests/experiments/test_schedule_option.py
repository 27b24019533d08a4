"""Every schedule in engine.schedules is selectable in the MNIST experiments' configs
(--schedule)."""

import typing

import pytest
import torch

from mlrepro.engine import RunDir
from mlrepro.engine.schedules import SCHEDULES
from mlrepro.errors import ConfigError
from mlrepro.experiment import RunContext
from mlrepro.experiments import get_experiment

EXPERIMENTS = ("mnist-mlp", "mnist-cnn", "fashion-mnist-cnn")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_schedule_field_offers_every_schedule(name):
    exp = get_experiment(name)
    assert set(typing.get_args(typing.get_type_hints(exp.config)["schedule"])) == set(SCHEDULES)
    for s in SCHEDULES:
        assert exp.make_config(None, {"schedule": s}).schedule == s
    with pytest.raises(ConfigError, match="--schedule expects one of"):
        exp.make_config(None, {"schedule": "linear"})


def _lrs(name, data_dir, tmp_path, **overrides):
    """The learning rate at every step of a quick run's schedule (the scheduler stepped, no
    training)."""
    exp = get_experiment(name)
    cfg = exp.make_config("quick", overrides)
    ctx = RunContext(RunDir(tmp_path), 0, torch.device("cpu"), str(data_dir) if data_dir else None)
    s = exp.setup(cfg, ctx)
    opt, sched = s.learner.optimizer, s.learner.scheduler
    total = s.info.get("total_steps") or cfg.epochs * len(s.train)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()  # no gradients: parameters stay put, but the scheduler sees a stepped optimizer
        if sched is not None:
            sched.step()
    return lrs, len(s.train)


@pytest.mark.parametrize("name", ["mnist-cnn", "mnist-mlp"])
def test_piecewise_and_constant_schedules_reach_the_optimizer(name, data_dir, tmp_path):
    flat, _ = _lrs(name, data_dir, tmp_path, schedule="constant", lr=0.01)
    assert set(flat) == {0.01}
    steps, _ = _lrs(name, data_dir, tmp_path, schedule="piecewise", epochs=10, lr=0.01)
    # WRN paper: ×0.2 at 30/60/80 % of training.
    assert steps[0] == pytest.approx(0.01) and steps[-1] == pytest.approx(0.01 * 0.2**3)
    assert len({round(v, 12) for v in steps}) == 4


def test_mnist_cnn_schedules_follow_the_step_budget(data_dir, tmp_path):
    # 13 steps (not whole epochs): 1cycle peaks at warmup_frac of them and ends annealed.
    one, _ = _lrs(
        "mnist-cnn",
        data_dir,
        tmp_path,
        schedule="onecycle",
        total_steps=13,
        lr=0.01,
        warmup_frac=0.3,
    )
    assert abs(max(range(13), key=one.__getitem__) - 0.3 * 13) <= 1
    assert one[0] == pytest.approx(0.01 / 25) and one[-1] < 0.01 / 25
    warm, _ = _lrs(
        "mnist-cnn",
        data_dir,
        tmp_path,
        schedule="warmup-cosine",
        total_steps=40,
        lr=0.01,
        warmup_frac=0.25,
    )
    assert (
        warm[0] == pytest.approx(0.01 / 10) and warm[9] == pytest.approx(0.01) and warm[-1] < 0.001
    )
    sgdr, per_epoch = _lrs(
        "mnist-cnn", data_dir, tmp_path, schedule="cosine-restarts", epochs=2, lr=0.01
    )
    assert sgdr[0] == sgdr[per_epoch] == pytest.approx(0.01)  # a restart after one epoch
    assert sgdr[per_epoch - 1] < 0.01 * 0.1
