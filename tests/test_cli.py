"""The command line: listing, runs, errors as one line, multi-seed summaries, CSV commands."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mlrepro.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_names_every_experiment(capsys):
    code, out, _ = run_cli(capsys, "list", "-v")
    assert code == 0
    for name in ("linreg-line", "kmeans-cola", "mnist-mlp"):
        assert name in out
    assert "presets: quick, restarts" in out


def test_run_help_lists_the_experiments_options_with_sources(capsys):
    code, out, _ = run_cli(capsys, "run", "mnist-mlp", "--help")
    assert code == 0
    assert "--seeds" in out and "--results-dir" in out  # the runner's own flags
    assert "claim: 97 % test accuracy" in out and "quick        smoke test" in out
    assert "--lr (float, > 0; default 0.003)" in out and "[ours] Adam's learning rate" in out
    assert "--hidden (comma-separated ints, >= 1; default 256,256)" in out and "[blog]" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["run", "nope"], "unknown experiment 'nope'; valid: linreg-line, kmeans-cola, mnist-mlp"),
        (
            ["run", "linreg-line", "--lrr", "1"],
            "unknown option --lrr for linreg-line; valid: --n-samples",
        ),
        (["run", "linreg-line", "--max-iter", "many"], "option --max-iter expects int, got 'many'"),
        (
            ["run", "linreg-line", "--preset", "huge"],
            "unknown preset 'huge' for linreg-line; valid: quick",
        ),
        (["run", "linreg-line", "--device", "tpu"], "--device: unknown device 'tpu'"),
        (["run", "--resume", "/nonexistent/run"], "--resume: /nonexistent/run does not exist"),
        (["run"], "run: name an experiment"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, argv, message):
    code, _out, err = run_cli(capsys, *argv, "--out", str(tmp_path))
    assert code == 2
    assert err.startswith("mlrepro: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing half-created


def test_run_prints_run_folder_last_and_writes_evidence(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "run", "linreg-line", "--quick", "--out", str(tmp_path), "-q")
    assert code == 0
    run_dir = Path(out.strip().splitlines()[-1])
    assert run_dir.parent == tmp_path / "linreg-line"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["experiment"] == "linreg-line" and config["preset"] == "quick"
    assert config["config"]["n_samples"] == 100 and "torch" in config["hardware"]
    assert config["command"] == f"mlrepro run linreg-line --quick --out {tmp_path} -q"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_r2"] > 0.99
    assert (run_dir / "plots" / "fit.png").stat().st_size > 1000


def test_seeds_write_mean_and_std_summary(capsys, tmp_path):
    code, out, _ = run_cli(
        capsys,
        "run",
        "kmeans-cola",
        "--quick",
        "--seeds",
        "0,1,2",
        "--out",
        str(tmp_path / "runs"),
        "--results-dir",
        str(tmp_path / "res"),
        "-q",
    )
    assert code == 0
    summary = json.loads((tmp_path / "res" / "kmeans-cola.quick.json").read_text())
    assert summary["n"] == 3 and summary["seeds"] == [0, 1, 2]
    inertia = summary["metrics"]["inertia"]
    assert inertia["mean"] == pytest.approx(np.mean(inertia["values"]))
    assert inertia["std"] == pytest.approx(np.std(inertia["values"], ddof=1))
    assert len(set(inertia["values"])) == 3  # the seeds really differ
    assert summary["command"].startswith("mlrepro run kmeans-cola --quick --seeds 0,1,2")
    assert "label_agreement: " in out


def test_linreg_and_kmeans_on_a_user_csv(capsys, tmp_path):
    rng = np.random.default_rng(0)
    size = rng.uniform(500, 3500, 200)
    rooms = rng.integers(1, 6, 200)
    price = 20_000 + 120 * size + 5_000 * rooms + rng.normal(0, 1_000, 200)
    csv = tmp_path / "houses.csv"
    csv.write_text(
        "size,rooms,price\n" + "".join(f"{a},{b},{c}\n" for a, b, c in zip(size, rooms, price))
    )
    code, out, _ = run_cli(
        capsys, "linreg", str(csv), "--target", "price", "--solver", "closed_form"
    )
    assert code == 0 and "test R²:  0.99" in out and "·size" in out and "·rooms" in out

    labels = tmp_path / "labels.txt"
    code, out, _ = run_cli(
        capsys,
        "kmeans",
        str(csv),
        "-k",
        "3",
        "--columns",
        "size,rooms",
        "--labels-out",
        str(labels),
    )
    assert code == 0 and "inertia:" in out
    assert len(labels.read_text().split()) == 200

    code, _, err = run_cli(capsys, "linreg", str(csv), "--target", "cost")
    assert code == 2 and "cost" in err and "price" in err and err.count("\n") == 1


KILLER = textwrap.dedent("""
    import os, signal, sys
    from mlrepro.engine import callbacks

    # SIGKILL this process part-way through epoch 3, after epoch 2's checkpoint was written.
    def on_batch_begin(self, learner):
        if learner.epoch == 2 and learner.global_step == 2 * learner.steps_per_epoch + 3:
            os.kill(os.getpid(), signal.SIGKILL)

    callbacks.Checkpoint.on_batch_begin = on_batch_begin
    from mlrepro.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_resume_after_kill_9_gives_the_same_final_metrics(tmp_path, data_dir):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    args = ["run", "mnist-mlp", "--quick", "--epochs", "4", "--threads", "1", "-q"]
    if data_dir:
        args += ["--data-dir", str(data_dir)]

    def cli(argv, script="from mlrepro.cli import main; import sys; sys.exit(main(sys.argv[1:]))"):
        return subprocess.run(
            [sys.executable, "-c", script, *argv],
            capture_output=True,
            text=True,
            check=False,
            env=env,
            timeout=300,
        )

    first = cli([*args, "--out", str(tmp_path / "a")])
    assert first.returncode == 0, first.stderr
    straight = Path(first.stdout.strip().splitlines()[-1])

    killed = cli([*args, "--out", str(tmp_path / "b")], KILLER)
    assert killed.returncode == -signal.SIGKILL
    run_dir = next((tmp_path / "b" / "mnist-mlp").iterdir())
    assert not (run_dir / "metrics.json").exists()
    assert len((run_dir / "history.jsonl").read_text().splitlines()) == 2

    resumed = cli(["run", "--resume", str(run_dir), "--threads", "1", "-q"])
    assert resumed.returncode == 0, resumed.stderr
    assert Path(resumed.stdout.strip().splitlines()[-1]) == run_dir
    a = json.loads((straight / "metrics.json").read_text())
    b = json.loads((run_dir / "metrics.json").read_text())
    assert b["epochs"] == 4
    for key in ("test_accuracy", "test_loss", "val_accuracy"):
        assert a[key] == b[key], key
    hist_a = (straight / "history.jsonl").read_text().splitlines()
    hist_b = (run_dir / "history.jsonl").read_text().splitlines()

    def strip(rows):
        return [{k: v for k, v in json.loads(r).items() if k != "time_s"} for r in rows]

    assert strip(hist_a) == strip(hist_b)


def test_lr_find_writes_plot_and_suggestions(capsys, tmp_path, data_dir):
    extra = ["--data-dir", str(data_dir)] if data_dir else []
    code, out, _ = run_cli(
        capsys,
        "lr-find",
        "mnist-mlp",
        "--quick",
        "--steps",
        "30",
        "--out",
        str(tmp_path),
        "-q",
        "--threads",
        "1",
        "--hidden",
        "32",
        *extra,
    )
    assert code == 0
    run_dir = Path(out.strip().splitlines()[-1])
    assert run_dir.parent == tmp_path / "lr-find" / "mnist-mlp"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["suggestions"]) == {"valley", "steepest", "minimum/10", "blog"}
    assert "<- suggested" in out and (run_dir / "plots" / "lr_find.png").exists()
    assert json.loads((run_dir / "config.json").read_text())["config"]["hidden"] == [32]

    code, _, err = run_cli(capsys, "lr-find", "kmeans-cola", "--out", str(tmp_path))
    assert code == 2 and "has no setup" in err


def test_schedule_plot(capsys, tmp_path):
    out_png = tmp_path / "s.png"
    code, _out, _ = run_cli(
        capsys,
        "schedule-plot",
        "onecycle",
        "piecewise",
        "--epochs",
        "200",
        "--steps-per-epoch",
        "5",
        "-o",
        str(out_png),
    )
    assert code == 0 and out_png.stat().st_size > 5000
    code, _, err = run_cli(capsys, "schedule-plot", "linear", "-o", str(out_png))
    assert code == 2 and "unknown schedule 'linear'" in err


def test_an_output_option_never_replaces_a_file_of_another_kind(tmp_path, capsys):
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    code = main(["schedule-plot", "onecycle", "--epochs", "2", "--output", str(data)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("mlrepro: error: ") == 1 and "Traceback" not in err
    assert f"--output: {data} exists and is not a PNG image; not replacing it" in err
    assert data.read_text() == "a,b\n1,2\n"
    # an earlier plot is drawn again
    png = tmp_path / "s.png"
    assert main(["schedule-plot", "onecycle", "--epochs", "2", "--output", str(png)]) == 0
    first = png.read_bytes()
    assert main(["schedule-plot", "constant", "--epochs", "2", "--output", str(png)]) == 0
    assert png.read_bytes() != first
