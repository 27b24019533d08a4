"""mnist-cnn's step budget (the tutorial counts steps, not epochs) and its recipe checks."""

import pytest

from mlrepro.errors import ConfigError
from mlrepro.experiments import get_experiment
from mlrepro.runner import run_experiment


def test_total_steps_stops_mid_epoch(tmp_path, data_dir):
    run_dir, metrics = run_experiment(
        "mnist-cnn", preset="quick", overrides={"total_steps": 13, "schedule": "constant"},
        out=tmp_path, device="cpu", data_dir=str(data_dir) if data_dir else None, verbose=False)
    assert metrics["steps"] == 13 and metrics["epochs"] == pytest.approx(1.3)
    assert [r["epoch"] for r in run_dir.history()] == [1]  # the partial second epoch is not logged


def test_tutorial_preset_is_the_tutorials_recipe():
    exp = get_experiment("mnist-cnn")
    t = exp.presets["tutorial"]
    assert (t["lr"], t["batch_size"], t["total_steps"], t["schedule"], t["init"]) == (
        1e-4, 50, 20_000, "constant", "tf")


def test_a_1cycle_too_short_to_have_phases_is_a_config_error(tmp_path, data_dir):
    with pytest.raises(ConfigError, match="1cycle over 2 steps"):
        run_experiment("mnist-cnn", preset="quick", overrides={"total_steps": 2}, out=tmp_path,
                       device="cpu", data_dir=str(data_dir) if data_dir else None, verbose=False)
