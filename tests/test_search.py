import json
from pathlib import Path

import pytest

pytest.importorskip("optuna")

from mlrepro.cli import main
from mlrepro.errors import ConfigError
from mlrepro.search import Param, parse_param


def test_parse_param_forms_and_errors():
    assert parse_param("lr=log:1e-4:1") == Param("lr", "log", 1e-4, 1.0)
    assert parse_param("max-iter=int:10:100") == Param("max_iter", "int", 10, 100)
    assert parse_param("solver=choice:gd,closed_form").choices == ("gd", "closed_form")
    for bad in ("lr", "lr=log:1", "lr=cube:1:2", "lr=log:0:1", "lr=float:2:1"):
        with pytest.raises(ConfigError, match="--param"):
            parse_param(bad)
    assert Param("lr", "log", 1e-3, 1e-1).grid(3) == pytest.approx([1e-3, 1e-2, 1e-1])


def test_search_runs_trials_and_resumes_from_shared_storage(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    args = [
        "search",
        "linreg-line",
        "--param",
        "lr=log:1e-2:1",
        "--sampler",
        "random",
        "--quick",
        "--storage",
        storage,
        "--out",
        str(tmp_path),
        "-q",
        "--max-iter",
        "300",
    ]
    assert main([*args, "--trials", "3"]) == 0
    assert main([*args, "--trials", "5"]) == 0  # continues the same study: 2 more trials
    out = capsys.readouterr().out
    assert "5 trials; best 0.99" in out
    study = json.loads((tmp_path / "search" / "linreg-line-random" / "study.json").read_text())
    assert len(study["trials"]) == 5 and study["direction"] == "maximize"
    lrs = [t["params"]["lr"] for t in study["trials"]]
    assert len(set(lrs)) == 5 and all(1e-2 <= v <= 1 for v in lrs)
    assert all(Path(t["run_dir"]).is_dir() for t in study["trials"])
    for t in study["trials"]:  # each trial really used its sampled value
        cfg = json.loads((Path(t["run_dir"]) / "config.json").read_text())["config"]
        assert cfg["lr"] == t["params"]["lr"] and cfg["max_iter"] == 300


def test_search_rejects_unknown_params(capsys, tmp_path):
    code = main(["search", "linreg-line", "--param", "momentum=float:0:1", "--out", str(tmp_path)])
    assert code == 2 and "--param momentum: not an option of linreg-line" in capsys.readouterr().err
