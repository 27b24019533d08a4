"""mnist-cnn's step budget (the tutorial counts steps, not epochs) and its recipe checks."""

import pytest
import torch

from mlrepro.errors import ConfigError
from mlrepro.experiments import get_experiment
from mlrepro.runner import run_experiment


def test_total_steps_stops_mid_epoch(tmp_path, data_dir):
    run_dir, metrics = run_experiment(
        "mnist-cnn",
        preset="quick",
        overrides={"total_steps": 13, "schedule": "constant"},
        out=tmp_path,
        device="cpu",
        data_dir=str(data_dir) if data_dir else None,
        verbose=False,
    )
    assert metrics["steps"] == 13 and metrics["epochs"] == pytest.approx(1.3)
    assert [r["epoch"] for r in run_dir.history()] == [1, 2]  # the partial second one is logged


def test_a_1cycle_over_steps_that_are_not_whole_epochs_trains(tmp_path, data_dir):
    # 1cycle laid out over 13 steps while the 2 epochs they touch hold 20: the budget, not the
    # epochs, is the schedule's length (this used to fail before training).
    _, metrics = run_experiment(
        "mnist-cnn",
        preset="quick",
        overrides={"total_steps": 13},
        out=tmp_path,
        device="cpu",
        data_dir=str(data_dir) if data_dir else None,
        verbose=False,
    )
    assert metrics["steps"] == 13


def test_tutorial_preset_is_the_tutorials_recipe():
    exp = get_experiment("mnist-cnn")
    t = exp.presets["tutorial"]
    assert (t["lr"], t["batch_size"], t["total_steps"], t["schedule"], t["init"]) == (
        1e-4,
        50,
        20_000,
        "constant",
        "tf",
    )


def test_a_1cycle_too_short_to_have_phases_is_a_config_error(tmp_path, data_dir):
    with pytest.raises(ConfigError, match="1cycle over 2 steps"):
        run_experiment(
            "mnist-cnn",
            preset="quick",
            overrides={"total_steps": 2},
            out=tmp_path,
            device="cpu",
            data_dir=str(data_dir) if data_dir else None,
            verbose=False,
        )


def test_fast_preset_is_the_default_in_bf16_at_batch_256_for_two_epochs():
    exp = get_experiment("mnist-cnn")
    fast, default = exp.make_config("fast"), exp.make_config()
    assert (fast.precision, fast.epochs, fast.channels_last) == ("bf16", 2, True)
    assert (fast.batch_size, fast.lr, fast.schedule) == (256, 5e-3, "onecycle")
    # The same network, data and 1cycle shape as the default: only these differ.
    differ = {k for k in vars(default) if getattr(fast, k) != getattr(default, k)}
    assert differ == {"precision", "epochs", "batch_size", "lr"}


def test_fast_preset_trains_in_bf16_on_a_few_images(tmp_path, data_dir):
    exp = get_experiment("mnist-cnn")
    run_dir, metrics = run_experiment(
        "mnist-cnn",
        preset="fast",
        out=tmp_path,
        device="cpu",
        overrides={**exp.presets["quick"].overrides, "epochs": 1},
        data_dir=str(data_dir) if data_dir else None,
        verbose=False,
    )
    assert run_dir.read_config()["config"]["precision"] == "bf16"
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["steps"] == 10  # 500 images, batch 50


def test_fast_preset_runs_the_network_in_bf16_and_channels_last(tmp_path, data_dir):
    from mlrepro.engine import RunDir
    from mlrepro.experiment import RunContext

    exp = get_experiment("mnist-cnn")
    cfg = exp.make_config("fast", {**exp.presets["quick"].overrides, "epochs": 2})
    s = exp.setup(
        cfg,
        RunContext(RunDir(tmp_path), 0, torch.device("cpu"), str(data_dir) if data_dir else None),
    )
    x = s.learner.prepare_input(next(iter(s.train))[0])
    assert x.is_contiguous(memory_format=torch.channels_last)
    with s.learner.autocast():
        out = s.learner.model(x)
    assert s.learner.precision == "bf16" and out.dtype == torch.bfloat16 and out.shape == (50, 10)
