"""`mlrepro aggregate`: the `run --seeds` summary from run folders finished separately."""

import json
from pathlib import Path

import pytest

from mlrepro.cli import main


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_run(capsys, out: Path, seed: int, *extra) -> Path:
    code, stdout, _ = cli(
        capsys, "run", "linreg-line", "--quick", "--seed", seed, "--out", out, "-q", *extra
    )
    assert code == 0
    return Path(stdout.strip().splitlines()[-1])


def test_aggregate_matches_run_seeds(capsys, tmp_path):
    dirs = [one_run(capsys, tmp_path / "runs", s) for s in (0, 1)]
    code, out, _ = cli(capsys, "aggregate", *dirs, "--results-dir", tmp_path / "parallel")
    assert code == 0 and "summary: " in out
    parallel = json.loads((tmp_path / "parallel" / "linreg-line.quick.json").read_text())
    code, _, _ = cli(
        capsys,
        "run",
        "linreg-line",
        "--quick",
        "--seeds",
        "0,1",
        "--out",
        tmp_path / "seq",
        "-q",
        "--results-dir",
        tmp_path / "sequential",
    )
    sequential = json.loads((tmp_path / "sequential" / "linreg-line.quick.json").read_text())
    assert parallel["seeds"] == [0, 1] and parallel["n"] == 2
    assert parallel["config"] == sequential["config"]
    r2 = parallel["metrics"]["test_r2"]
    assert r2["values"] == sequential["metrics"]["test_r2"]["values"]
    assert r2["values"][0] != r2["values"][1]  # two seeds really differ
    walls = parallel["metrics"]["wall_time_s"]["values"]
    assert parallel["wall_time_s"] == pytest.approx(sum(walls))
    assert parallel["command"].startswith("mlrepro aggregate ")
    assert parallel["run_commands"][1].startswith("mlrepro run linreg-line --quick --seed 1")


@pytest.mark.parametrize(
    "case,message",
    [
        ("unfinished", "has not finished (no metrics.json)"),
        ("config", "differs from"),
        ("repeat", "seeds repeat ([0, 0])"),
        ("not-a-run", "is not a run folder"),
    ],
)
def test_aggregate_refuses_unlike_or_unfinished_runs(capsys, tmp_path, case, message):
    first = one_run(capsys, tmp_path / "runs", 0)
    if case == "unfinished":
        other = one_run(capsys, tmp_path / "runs", 1)
        (other / "metrics.json").unlink()
    elif case == "config":
        other = one_run(capsys, tmp_path / "runs", 1, "--lr", "0.05")
    elif case == "repeat":
        other = one_run(capsys, tmp_path / "runs", 0)
    else:
        other = tmp_path
    code, _, err = cli(capsys, "aggregate", first, other, "--results-dir", tmp_path / "results")
    assert code == 2 and err.startswith("mlrepro: error: aggregate: ") and message in err
    assert not (tmp_path / "results").exists()  # nothing written


@pytest.mark.parametrize("other_tol, ok", [(None, True), ("1e-9", False)])
def test_a_field_added_after_a_run_counts_at_its_default(capsys, tmp_path, other_tol, ok):
    # The first run was made before the experiment had `tol` and `max_iter` (its config.json
    # lacks them): it is like a run made after with their defaults (the quick preset's
    # max_iter), and unlike one with another tol.
    first = one_run(capsys, tmp_path / "runs", 0)
    record = json.loads((first / "config.json").read_text())
    del record["config"]["tol"], record["config"]["max_iter"]
    (first / "config.json").write_text(json.dumps(record))
    other = one_run(capsys, tmp_path / "runs", 1, *(["--tol", other_tol] if other_tol else []))
    code, _, err = cli(capsys, "aggregate", first, other, "--results-dir", tmp_path / "results")
    if ok:
        assert code == 0, err
        summary = json.loads((tmp_path / "results" / "linreg-line.quick.json").read_text())
        assert summary["seeds"] == [0, 1]
        assert summary["config"]["tol"] == 1e-12 and summary["config"]["max_iter"] == 2000
    else:
        assert code == 2 and "differs from" in err and "'tol': 1e-09" in err


@pytest.mark.parametrize("other_tol, ok", [("1e-9", True), (None, False)])
def test_a_field_whose_default_changed_counts_at_its_former_default(
    capsys, tmp_path, monkeypatch, other_tol, ok
):
    # Say tol's default was 1e-9 when the first run was made without recording it, and has
    # changed since: that run ran with 1e-9, so it is like a run with --tol 1e-9 and unlike one
    # with today's default. Rebuilding its config (play, export, resume) gives 1e-9 too.
    from mlrepro.experiments import get_experiment
    from mlrepro.runfolder import load_run

    monkeypatch.setattr(get_experiment("linreg-line").config, "former_defaults", {"tol": 1e-9})
    first = one_run(capsys, tmp_path / "runs", 0)
    record = json.loads((first / "config.json").read_text())
    del record["config"]["tol"]
    (first / "config.json").write_text(json.dumps(record))
    assert load_run(first)[3].tol == 1e-9
    other = one_run(capsys, tmp_path / "runs", 1, *(["--tol", other_tol] if other_tol else []))
    code, _, err = cli(capsys, "aggregate", first, other, "--results-dir", tmp_path / "results")
    if ok:
        assert code == 0, err
        summary = json.loads((tmp_path / "results" / "linreg-line.quick.json").read_text())
        assert summary["config"]["tol"] == 1e-9
    else:
        assert code == 2 and "differs from" in err and "'tol': 1e-09" in err
