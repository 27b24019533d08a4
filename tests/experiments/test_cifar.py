"""The CIFAR experiments' shared pieces (mlrepro.experiments._cifar)."""

import pytest
import torch
from torch import nn

from mlrepro.experiments import _cifar, fast_cifar10
from mlrepro.nn import create_model


def test_param_groups_scale_the_bn_lr_and_keep_the_decay_per_step():
    model = create_model("fast_cifar_small")
    groups = _cifar.param_groups(
        model, lr=0.5, weight_decay=1e-3, decay_norm_and_bias=True, norm_lr_scale=64
    )
    weights, biases, norms = groups
    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert {id(p) for p in norms["params"]} == {id(m.bias) for m in bn}  # BN scales are frozen
    assert norms["lr"] == 32 and norms["lr"] * norms["weight_decay"] == pytest.approx(0.5 * 1e-3)
    assert biases["params"] == [model.whiten.bias] and biases["weight_decay"] == 1e-3
    assert all(p.ndim > 1 for p in weights["params"]) and weights["lr"] == 0.5
    n_trainable = sum(1 for p in model.parameters() if p.requires_grad)
    assert sum(len(g["params"]) for g in groups) == n_trainable
    no_decay = _cifar.param_groups(model, 0.5, 1e-3, decay_norm_and_bias=False, norm_lr_scale=64)
    assert [g["weight_decay"] for g in no_decay] == [1e-3, 0.0, 0.0]


def test_onecycle_runs_the_configured_triangle_per_group():
    cfg = fast_cifar10.Config()
    model = create_model("fast_cifar_small")
    groups = _cifar.param_groups(model, cfg.lr, cfg.weight_decay, True, cfg.norm_lr_scale)
    opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    steps = 100
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=[g["lr"] for g in groups],
        total_steps=steps,
        pct_start=cfg.warmup_frac,
        anneal_strategy="linear",
        cycle_momentum=False,
        div_factor=1 / cfg.lr_start_frac,
        final_div_factor=cfg.lr_start_frac / cfg.lr_end_frac,
    )
    lrs = []
    for _ in range(steps):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    first, last = torch.tensor(lrs[0]), torch.tensor(lrs[-1])
    peak = torch.tensor(lrs).max(0).values
    torch.testing.assert_close(first, torch.tensor([0.2 * cfg.lr] * 2 + [0.2 * cfg.lr * 64]))
    torch.testing.assert_close(peak, torch.tensor([cfg.lr] * 2 + [cfg.lr * 64]))
    torch.testing.assert_close(last, torch.tensor([0.07 * cfg.lr] * 2 + [0.07 * cfg.lr * 64]))


def test_translate_tta_averages_the_six_views_with_airbench_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(5))
    x = torch.randn(2, 3, 8, 8)
    model(x)
    padded = nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    up_left, down_right = padded[:, :, :8, :8], padded[:, :, 2:, 2:]

    def mirror(v):
        return (model(v) + model(v.flip(3))) / 2

    want = 0.5 * mirror(x) + 0.25 * mirror(up_left) + 0.25 * mirror(down_right)
    torch.testing.assert_close(_cifar.FlipTTA(model, translate=1)(x), want)
    torch.testing.assert_close(_cifar.FlipTTA(model)(x), mirror(x))


@pytest.mark.parametrize(
    "field,value,rule",
    [
        ("lr_start_frac", 0.0, "> 0 and <= 1"),
        ("lr_end_frac", 1.5, "> 0 and <= 1"),
        ("norm_lr_scale", 0.0, "> 0"),
    ],
)
def test_config_rejects_bad_schedule_fractions(field, value, rule):
    with pytest.raises(
        ValueError, match=f"--{field.replace('_', '-')} must be {rule}, got {value}"
    ):
        fast_cifar10.Config(**{field: value})


@pytest.mark.parametrize("field", ["lookahead_every", "lookahead_start_epoch", "tta_translate"])
def test_config_rejects_negative_counts(field):
    with pytest.raises(ValueError, match="must be >= 0"):
        fast_cifar10.Config(**{field: -1})
