"""Trustworthy runs: a run uses the data it says it used, evidence is never silently replaced, bad
input is one line and leaves nothing behind, and interrupted runs and sweeps can be continued."""

import json
import os
import shutil
from pathlib import Path

import pytest

from mlrepro.cli import main
from mlrepro.engine import RunDir


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, message):
    assert code == 2, err
    assert err.startswith("mlrepro: error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


@pytest.fixture
def no_data_named(monkeypatch, tmp_path):
    """No data folder named anywhere, and an empty user data folder: the bundled samples serve."""
    monkeypatch.delenv("MLREPRO_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("MLREPRO_OFFLINE", "1")
    monkeypatch.setenv("MLREPRO_CACHE", str(tmp_path / "cache"))


def kill_after_checkpoints(monkeypatch, n: int) -> None:
    """Make the n-th checkpoint write the last thing the process does (as after `kill -9`)."""
    save = RunDir.save_checkpoint
    count = {"n": 0}

    def save_then_die(self, state, stage=None, **kw):
        save(self, state, stage, **kw)
        count["n"] += 1
        if count["n"] == n:
            monkeypatch.setattr(RunDir, "save_checkpoint", save)
            raise KeyboardInterrupt

    monkeypatch.setattr(RunDir, "save_checkpoint", save_then_die)


# --- data provenance and resume ---


def test_resume_reads_the_data_the_run_recorded_even_without_the_environment(
    capsys, tmp_path, monkeypatch, data_dir
):
    if data_dir is None:
        pytest.skip("needs the full MNIST")
    monkeypatch.setenv("MLREPRO_DATA", str(data_dir))
    kill_after_checkpoints(monkeypatch, 1)
    code, _, err = cli(capsys, "run", "mnist-mlp", "--quick", "--out", tmp_path, "-q")
    assert code == 130 and "continue with `mlrepro run --resume " in err
    (run,) = (tmp_path / "mnist-mlp").iterdir()
    assert str(run) in err  # the interrupt message names the folder
    config = json.loads((run / "config.json").read_text())
    assert config["data_dir"] == str(Path(data_dir).absolute())
    assert config["data_dir_from"] == "MLREPRO_DATA"
    assert config["data"]["mnist/train"]["sample"] is False

    monkeypatch.delenv("MLREPRO_DATA")  # a new shell: the resume must still read the same folder
    code, _, _ = cli(capsys, "run", "--resume", run, "-q")
    assert code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"] == config["data"] and not metrics.get("notes")

    # A finished run's metrics are evidence: resuming it again is refused, the file untouched.
    before = (run / "metrics.json").read_bytes()
    code, _, err = cli(capsys, "run", "--resume", run)
    one_line_error(code, err, "has finished (metrics.json exists)")
    assert (run / "metrics.json").read_bytes() == before


def test_resume_stops_when_the_recorded_data_is_gone(capsys, tmp_path, monkeypatch, data_dir):
    if data_dir is None:
        pytest.skip("needs the full MNIST")
    copy = tmp_path / "data"
    shutil.copytree(Path(data_dir) / "mnist", copy / "mnist")
    kill_after_checkpoints(monkeypatch, 1)
    code, _, _ = cli(
        capsys, "run", "mnist-mlp", "--quick", "--data-dir", copy, "--out", tmp_path / "runs", "-q"
    )
    assert code == 130
    (run,) = (tmp_path / "runs" / "mnist-mlp").iterdir()
    shutil.rmtree(copy / "mnist")
    code, _, err = cli(capsys, "run", "--resume", run, "-q")
    one_line_error(code, err, "mnist")
    assert not (run / "metrics.json").exists()


def test_a_run_without_a_data_folder_records_the_sample(capsys, tmp_path, no_data_named):
    code, out, err = cli(capsys, "run", "mnist-mlp", "--quick", "--out", tmp_path / "runs", "-q")
    assert code == 0
    run = Path(out.strip().splitlines()[-1])
    config = json.loads((run / "config.json").read_text())
    assert config["data_dir"] is None and config["data"]["mnist/train"]["sample"] is True
    assert "bundled" in err  # said once, as a note


def test_resume_refuses_a_data_folder_the_run_did_not_use(
    capsys, tmp_path, no_data_named, monkeypatch
):
    kill_after_checkpoints(monkeypatch, 1)
    assert cli(capsys, "run", "mnist-mlp", "--quick", "--out", tmp_path / "runs", "-q")[0] == 130
    (run,) = (tmp_path / "runs" / "mnist-mlp").iterdir()
    monkeypatch.setenv("MLREPRO_DATA", str(tmp_path))
    code, _, err = cli(capsys, "run", "--resume", run)
    one_line_error(code, err, "ran without a data folder, but MLREPRO_DATA is set now")


# --- results are evidence ---


def test_seeds_write_next_to_their_runs_and_never_touch_results(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("results").mkdir()
    Path("results/kmeans-cola.quick.json").write_text('{"committed": true}')
    code, out, _ = cli(capsys, "run", "kmeans-cola", "--quick", "--seeds", "0,1", "-q")
    assert code == 0
    assert Path("results/kmeans-cola.quick.json").read_text() == '{"committed": true}'
    summary_path = Path(out.split("summary: ")[1].splitlines()[0])
    assert summary_path.name == "summary.json" and summary_path.parent.parent == Path(
        "runs/kmeans-cola"
    )
    summary = json.loads(summary_path.read_text())
    assert summary["seeds"] == [0, 1] and summary["sample"] is False


def test_an_existing_results_file_is_replaced_only_with_force(capsys, tmp_path):
    results = tmp_path / "results"
    args = (
        "run",
        "kmeans-cola",
        "--quick",
        "--seeds",
        "0,1",
        "--out",
        tmp_path / "runs",
        "-q",
        "--results-dir",
        results,
    )
    assert cli(capsys, *args)[0] == 0
    first = (results / "kmeans-cola.quick.json").read_text()
    # Another seed set: refused before anything runs, and nothing is created for it.
    before = tree(tmp_path / "runs")
    code, _, err = cli(
        capsys,
        "run",
        "kmeans-cola",
        "--quick",
        "--seeds",
        "0,1,2",
        "--out",
        tmp_path / "runs",
        "-q",
        "--results-dir",
        results,
    )
    one_line_error(
        code,
        err,
        "exists (it differs in seeds [0, 1] vs [0, 1, 2]); results are evidence: pass --force",
    )
    assert (
        tree(tmp_path / "runs") == before
        and (results / "kmeans-cola.quick.json").read_text() == first
    )
    code, _, _ = cli(
        capsys,
        "run",
        "kmeans-cola",
        "--quick",
        "--seeds",
        "0,1,2",
        "--out",
        tmp_path / "runs",
        "-q",
        "--results-dir",
        results,
        "--force",
    )
    assert code == 0 and json.loads((results / "kmeans-cola.quick.json").read_text())["seeds"] == [
        0,
        1,
        2,
    ]


def test_sample_data_never_becomes_a_results_row(capsys, tmp_path, no_data_named):
    code, _, err = cli(
        capsys,
        "run",
        "mnist-mlp",
        "--quick",
        "--seeds",
        "0",
        "--out",
        tmp_path / "runs",
        "--results-dir",
        tmp_path / "results",
        "-q",
    )
    one_line_error(code, err, "mnist")
    assert not (tmp_path / "results").exists() and tree(tmp_path / "runs") == []


def test_aggregate_refuses_sample_runs_and_existing_results(capsys, tmp_path, no_data_named):
    code, out, _ = cli(capsys, "run", "mnist-mlp", "--quick", "--out", tmp_path / "runs", "-q")
    run = out.strip().splitlines()[-1]
    code, _, err = cli(capsys, "aggregate", run, "--results-dir", tmp_path / "results")
    one_line_error(code, err, "not written, the runs used the bundled data samples")
    assert not (tmp_path / "results").exists()


def test_an_unwritable_results_folder_is_found_before_training(capsys, tmp_path, monkeypatch):
    results = tmp_path / "ro"
    results.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != results and real_access(p, mode))
    code, _, err = cli(
        capsys,
        "run",
        "kmeans-cola",
        "--quick",
        "--seeds",
        "0,1",
        "--out",
        tmp_path / "runs",
        "--results-dir",
        results,
    )
    one_line_error(code, err, f"--results-dir: cannot write to {results}")
    assert not (tmp_path / "runs").exists()


# --- sweeps continue where they stopped ---


def test_an_interrupted_sweep_continues_when_the_command_is_run_again(
    capsys, tmp_path, monkeypatch, data_dir
):
    extra = ["--data-dir", data_dir] if data_dir else []
    args = ["run", "mnist-mlp", "--quick", "--seeds", "0,1", "--out", tmp_path / "a", "-q", *extra]
    assert cli(capsys, *args)[0] == 0
    whole = json.loads(
        next((tmp_path / "a" / "mnist-mlp").glob("sweep-*/summary.json")).read_text()
    )

    args[6] = tmp_path / "b"
    kill_after_checkpoints(monkeypatch, 3)  # seed 0 has 2 epochs: killed in seed 1
    code, _, err = cli(capsys, *args)
    assert code == 130 and "run the same command again to continue the sweep in" in err
    (sweep,) = (tmp_path / "b" / "mnist-mlp").glob("sweep-*")
    assert (sweep / "s0" / "metrics.json").exists() and not (sweep / "s1" / "metrics.json").exists()
    code, _, err = cli(capsys, *args)
    assert code == 0 and "seed 0: finished earlier" in err
    again = json.loads((sweep / "summary.json").read_text())
    for key in ("test_accuracy", "val_accuracy"):
        assert again["metrics"][key]["values"] == whole["metrics"][key]["values"]


# --- one line, never a traceback; nothing left behind ---


@pytest.mark.parametrize(
    "argv,message",
    [
        (["run", "mnist-mlp", "--lr", "-0.1"], "option --lr must be > 0, got -0.1"),
        (["run", "mnist-mlp", "--lr", "nan"], "option --lr expects float, got 'nan'"),
        (
            ["run", "mnist-mlp", "--seed", "-1"],
            "run: argument --seed: expected an integer >= 0, got -1",
        ),
        (
            ["run", "mnist-mlp", "--threads", "-3"],
            "argument --threads: expected an integer >= 1, got -3",
        ),
        (["run", "mnist-mlp", "--train-limit", "-5"], "option --train-limit must be >= 0, got -5"),
        (
            ["run", "kmeans-cola", "--seeds", "0,0"],
            "argument --seeds: expected distinct integers >= 0",
        ),
        (["run", "kmeans-cola", "--results-dir", "x"], "--results-dir goes with --seeds"),
        (["run", "--resume", "{file}"], "is a file; expected a run folder"),
        (["run", "linreg-line", "--out", "{file}"], "--out: {file} is a file; expected a folder"),
        (["run", "linreg-line", "--out", "{file}/sub"], "lies under the file"),
        (["aggregate", "{tmp}/typo"], "aggregate: {tmp}/typo does not exist"),
        (
            ["kmeans", "{csv}", "-k", "2", "--labels-out", "{tmp}"],
            "--labels-out: {tmp} is a folder",
        ),
        (
            ["report", "--readme", "{tmp}/README.md", "--results-dir", "{tmp}"],
            "--readme: cannot read",
        ),
        (["linreg", "{one_row}", "--target", "y"], "R² needs at least 2 rows"),
    ],
)
def test_bad_input_is_one_line_and_leaves_nothing(capsys, tmp_path, argv, message):
    file = tmp_path / "a-file"
    file.write_text("x")
    csv = tmp_path / "d.csv"
    csv.write_text("a,b\n1,2\n3,4\n5,7\n")
    one_row = tmp_path / "one.csv"
    one_row.write_text("x,y\n1,2\n")
    subs = {
        "{file}": str(file),
        "{tmp}": str(tmp_path),
        "{csv}": str(csv),
        "{one_row}": str(one_row),
    }

    def fill(s):
        for k, v in subs.items():
            s = s.replace(k, v)
        return s

    before = tree(tmp_path)
    code, _, err = cli(
        capsys,
        *map(fill, argv),
        *(["--out", tmp_path / "runs"] if argv[0] == "run" and "--out" not in argv else []),
    )
    one_line_error(code, err, fill(message))
    assert tree(tmp_path) == before


def test_a_failed_start_removes_its_run_folder(capsys, tmp_path, data_dir):
    extra = ["--data-dir", data_dir] if data_dir else []
    code, _, err = cli(
        capsys,
        "run",
        "mnist-mlp",
        "--quick",
        "--val-size",
        "100000",
        "--out",
        tmp_path / "runs",
        *extra,
    )
    one_line_error(code, err, "need more than the")
    assert not (tmp_path / "runs").exists()


def test_a_missing_extra_is_one_line(capsys, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "vizdoom" else real(n, *a)
    )
    code, _, err = cli(capsys, "run", "dqn-vizdoom-basic", "--quick", "--out", tmp_path)
    one_line_error(code, err, "dqn-vizdoom-basic needs vizdoom: pip install 'mlrepro[rl]'")
    assert tree(tmp_path) == []


def test_a_text_column_left_out_with_columns_is_no_error(capsys, tmp_path):
    csv = tmp_path / "survey.csv"
    csv.write_text("name,a,b\nx,1,2\ny,1.2,2.1\nz,9,9.5\nw,8.8,9.1\n")
    code, out, _ = cli(capsys, "kmeans", csv, "-k", "2", "--columns", "a,b")
    assert code == 0 and "inertia:" in out
    code, _, err = cli(capsys, "kmeans", csv, "-k", "2")
    one_line_error(code, err, "column 'name': 'x' is not a finite number")


def test_dry_run_checks_without_making_anything(capsys, tmp_path):
    code, out, _ = cli(
        capsys,
        "run",
        "mnist-cnn",
        "--preset",
        "tutorial",
        "--seeds",
        "0,1,2",
        "--dry-run",
        "--out",
        tmp_path / "runs",
        "--results-dir",
        tmp_path / "results",
    )
    assert code == 0 and "would run mnist-cnn (preset tutorial) with seeds 0,1,2" in out
    assert tree(tmp_path) == []


def test_resume_accepts_the_same_files_in_a_moved_folder(capsys, tmp_path, monkeypatch, data_dir):
    if data_dir is None:
        pytest.skip("needs the full MNIST")
    first, moved = tmp_path / "d1", tmp_path / "d2"
    shutil.copytree(Path(data_dir) / "mnist", first / "mnist")
    kill_after_checkpoints(monkeypatch, 1)
    assert (
        cli(
            capsys,
            "run",
            "mnist-mlp",
            "--quick",
            "--data-dir",
            first,
            "--out",
            tmp_path / "runs",
            "-q",
        )[0]
        == 130
    )
    (run,) = (tmp_path / "runs" / "mnist-mlp").iterdir()
    first.rename(moved)
    code, _, err = cli(capsys, "run", "--resume", run, "-q")
    one_line_error(code, err, "mnist")  # the recorded folder is gone
    assert cli(capsys, "run", "--resume", run, "--data-dir", moved, "-q")[0] == 0
    recorded = json.loads((run / "config.json").read_text())["data"]["mnist/train"]
    assert recorded["files"][0]["sha256"]  # what was read is recorded file by file


def test_an_unwritable_out_folder_is_one_line(capsys, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode))
    code, _, err = cli(capsys, "run", "linreg-line", "--quick", "--out", locked / "runs")
    one_line_error(code, err, f"--out: cannot write to {locked}")
    assert tree(tmp_path) == ["locked"]


def test_play_refuses_a_gif_path_that_is_a_folder(capsys, tmp_path):
    pytest.importorskip("vizdoom")
    code, out, _ = cli(
        capsys,
        "run",
        "dqn-vizdoom-basic",
        "--preset",
        "random",
        "--test-episodes",
        "2",
        "--out",
        tmp_path / "runs",
        "-q",
    )
    assert code == 0
    run = out.strip().splitlines()[-1]
    code, _, err = cli(capsys, "play", run, "--gif", tmp_path)
    one_line_error(code, err, f"--gif: {tmp_path} is a folder; expected a file name")
    code, _, err = cli(capsys, "play", run, "--gif", tmp_path / "agent.gif")
    one_line_error(code, err, "has no checkpoint to play")  # a random-policy run trained nothing
    assert not (tmp_path / "agent.gif").exists()


def test_sigterm_stops_a_run_like_ctrl_c_and_it_resumes(tmp_path):
    """`kill PID` (a scheduler's stop, `docker stop`) keeps the checkpoint, names the folder to
    resume, and exits 143 without a traceback; the resumed run finishes."""
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "MLREPRO_OFFLINE": "1", "MLREPRO_CACHE": str(tmp_path / "cache")}
    env.pop("MLREPRO_DATA", None)
    out = tmp_path / "runs"
    command = [sys.executable, "-m", "mlrepro", "run", "mnist-mlp", "--quick"]
    proc = subprocess.Popen(
        [*command, "--epochs", "40", "--out", str(out), "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("mnist-mlp/*/checkpoint*.pt")):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    (run,) = (out / "mnist-mlp").iterdir()
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert f"mlrepro: interrupted; continue with `mlrepro run --resume {run}`" in err
    assert not (run / "metrics.json").exists()
    done = subprocess.run(
        [sys.executable, "-m", "mlrepro", "run", "--resume", str(run), "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 40


RESULTS = Path(__file__).resolve().parents[1] / "results"
# Fields a results file recorded that no longer match its command, and why that is harmless.
STALE_BUT_UNUSED = {
    # 0 epochs of a random policy: no training step is taken, whatever steps_per_epoch says.
    "dqn-vizdoom-basic.random.json": {"steps_per_epoch"},
}


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*.json")), ids=lambda p: p.name)
def test_every_results_file_is_rebuilt_by_the_command_its_readme_row_shows(path):
    # A default that changes under committed results would make their rows claim that today's
    # command gives yesterday's numbers; such results are relabelled to the preset that rebuilds
    # them (docs/architecture.md). Fields added or renamed since a run count as the run ran them
    # (aggregate's rule).
    import shlex

    from mlrepro.cli import _preset, build_parser
    from mlrepro.config import parse_overrides
    from mlrepro.experiments import get_experiment
    from mlrepro.io import to_json
    from mlrepro.reporting import _with_preset
    from mlrepro.runner import _with_new_fields

    summary = json.loads(path.read_text())
    preset = None if summary["preset"] == "default" else summary["preset"]
    recorded = _with_new_fields({**summary, "preset": preset})
    commands = [
        _with_preset(c, summary["preset"])
        for c in summary.get("run_commands") or [summary["command"]]
    ]
    runs = [shlex.split(c) for c in commands if c.startswith("mlrepro run ")]
    if not runs:
        pytest.skip(f"{path.name} was made by {commands[0].split()[0]}, not `mlrepro run`")
    for words in runs:
        args, extra = build_parser().parse_known_args(words[1:])
        assert (_preset(args) or "default") == summary["preset"], words
        cfg = get_experiment(args.experiment).make_config(_preset(args), parse_overrides(extra))
        today = json.loads(to_json(cfg.__dict__, None))
        differ = {k for k in {*today, *recorded} if today.get(k, "?") != recorded.get(k, "?")}
        assert differ <= STALE_BUT_UNUSED.get(path.name, set()), (
            f"{path.name}: {' '.join(words)} builds another config today: "
            + ", ".join(f"{k} {recorded.get(k, '?')!r} -> {today.get(k, '?')!r}" for k in differ)
        )
