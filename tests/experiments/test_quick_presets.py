"""Every experiment's --quick preset runs on CPU in seconds and writes its headline metrics."""

import json

import pytest

from mlrepro.experiments import EXPERIMENTS, get_experiment
from mlrepro.runner import run_experiment


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_quick_preset_writes_headline_metrics(name, tmp_path, data_dir):
    exp = get_experiment(name)
    for module in getattr(exp, "REQUIRES", ()):  # an optional extra, e.g. vizdoom for RL
        pytest.importorskip(module)
    assert exp.__doc__ and "Claim:" in exp.__doc__ and "Run:" in exp.__doc__
    assert "quick" in exp.PRESETS and exp.HEADLINE
    run_dir, _metrics = run_experiment(name, preset="quick", out=tmp_path, device="cpu",
                                      data_dir=str(data_dir) if data_dir else None, verbose=False)
    saved = json.loads((run_dir.path / "metrics.json").read_text())
    assert isinstance(saved[exp.HEADLINE[0]], float)
    for key in exp.HEADLINE:  # a headline may be null when its target was not reached
        assert key in saved and (saved[key] is None or isinstance(saved[key], float)), key
    assert saved["wall_time_s"] > 0  # recorded; no time limit here (speed lives in benchmarks/)
    assert list((run_dir.path / "plots").glob("*.png"))
