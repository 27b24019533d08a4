"""Searches across processes: `--workers N` processes on one Optuna study in RDB storage, every
trial a run folder (and an MLflow child run with tracking on), an interrupted search continued."""

import json
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from mlrepro.cli import main
from mlrepro.engine import RunDir


def load(root: Path, name: str):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{root / name / 'study.db'}")


def test_two_workers_share_one_study(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    argv = [
        "search",
        "linreg-line",
        "--quick",
        "--param",
        "lr=log:1e-2:1",
        "--sampler",
        "random",
        "--workers",
        "2",
        "--out",
        str(tmp_path),
        "-q",
        "--max-iter",
        "300",
    ]
    assert main([*argv, "--trials", "4", "--track", "mlflow"]) == 0
    out = capsys.readouterr().out
    root = tmp_path / "search"
    study = load(root, "linreg-line-random")  # the default storage, in the search folder
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    assert sorted(t.number for t in trials) == list(range(4))  # unique numbers
    assert len({t.user_attrs["process"] for t in trials}) == 2  # both processes ran trials
    best = study.best_trial
    assert f"4 trials; best {best.value:.6g}" in out
    best_dir = Path(best.user_attrs["run_dir"])
    assert best_dir == root / "linreg-line-random" / f"trial-{best.number:04d}"
    assert json.loads((best_dir / "metrics.json").read_text())["test_r2"] == best.value
    summary = json.loads((root / "linreg-line-random" / "study.json").read_text())
    assert summary["best_run_dir"] == str(best_dir) and summary["workers"] == 2
    # With tracking: the search is a parent run, each trial one of its children.
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["linreg-line"], output_format="list")
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.data.tags["mlrepro.group"] == "search" and parent.info.status == "FINISHED"
    assert parent.data.metrics["best_test_r2"] == pytest.approx(best.value)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == [f"trial-{n:04d}" for n in range(4)]

    # The same command with more trials continues the study (and the same parent run).
    assert main([*argv, "--trials", "5", "--track", "mlflow"]) == 0
    assert sum(t.state.name == "COMPLETE" for t in load(root, "linreg-line-random").trials) == 5
    runs = mlflow.search_runs(experiment_names=["linreg-line"], output_format="list")
    assert [r.info.run_id for r in runs if "mlflow.parentRunId" not in r.data.tags] == [
        parent.info.run_id
    ]


def test_an_interrupted_search_resumes_its_interrupted_trial(capsys, tmp_path, monkeypatch):
    """Ctrl-C in a trial after its first checkpoint: running the command again resumes that trial's
    run folder with the same parameters, then runs the rest."""
    save = RunDir.save_checkpoint

    def save_then_die(self, *args, **kw):
        save(self, *args, **kw)
        monkeypatch.setattr(RunDir, "save_checkpoint", save)
        raise KeyboardInterrupt

    monkeypatch.setattr(RunDir, "save_checkpoint", save_then_die)
    monkeypatch.delenv("MLREPRO_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    argv = [
        "search",
        "mnist-mlp",
        "--quick",
        "--param",
        "lr=log:1e-3:1e-2",
        "--sampler",
        "random",
        "--trials",
        "2",
        "--storage",
        storage,
        "--out",
        str(tmp_path),
        "-q",
    ]
    assert main(argv) == 130
    assert "run the same command again to continue the search" in capsys.readouterr().err
    assert main(argv) == 0
    study = optuna.load_study(study_name="mnist-mlp-random", storage=storage)
    first, resumed, new = study.get_trials()
    assert first.state.name == "FAIL" and resumed.state.name == new.state.name == "COMPLETE"
    assert resumed.params == first.params and resumed.user_attrs["resumes"] == first.number
    assert resumed.user_attrs["run_dir"] == first.user_attrs["run_dir"]
    history = (Path(first.user_attrs["run_dir"]) / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in history] == [1, 2]
    assert new.params != first.params


def test_workers_refuse_bad_values_in_one_line(capsys, tmp_path):
    code = main(
        [
            "search",
            "linreg-line",
            "--param",
            "lr=log:1e-2:1",
            "--workers",
            "0",
            "--out",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err
    assert (
        code == 2
        and err.startswith("mlrepro: error: search: argument --workers")
        and err.count("\n") == 1
    )
    code = main(
        [
            "search",
            "linreg-line",
            "--param",
            "lr=log:1e-2:1",
            "--workers",
            "2",
            "--storage",
            "nope://x",
            "--out",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--storage: cannot open 'nope://x'" in err and err.count("\n") == 1
