"""Tracking: TensorBoard and MLflow see what the run folder holds, resumed runs continue the same
MLflow run and TensorBoard steps, groups (sweeps) are parent runs, and tracking never costs a run
its evidence or starts one with a bad store."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")

import mlflow
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hp_meta

from mlrepro import tracking
from mlrepro.cli import main
from mlrepro.engine import Learner, RunDir
from mlrepro.experiment import RunContext
from mlrepro.runner import run_experiment
from mlrepro.tracking import MLflowTracker, TensorBoardTracker, Trackers


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, message):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("mlrepro: error: ") and message in lines[-1], err
    assert sum(line.startswith("mlrepro: error: ") for line in lines) == 1
    assert "Traceback" not in err


@pytest.fixture
def samples(monkeypatch, tmp_path):
    """No data folder named anywhere: the bundled samples serve (fast, and recorded as such)."""
    monkeypatch.delenv("MLREPRO_DATA", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("MLREPRO_OFFLINE", "1")
    monkeypatch.setenv("MLREPRO_CACHE", str(tmp_path / "cache"))


def runs_of(uri: str, experiment: str) -> list:
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


def steps(uri: str, run_id: str, key: str) -> list[int]:
    return [m.step for m in MlflowClient(uri).get_metric_history(run_id, key)]


def scalars(log_dir: Path, tag: str) -> list[tuple[int, float]]:
    ea = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    return [(e.step, e.value) for e in ea.Scalars(tag)]


def kill_at_checkpoint(monkeypatch, n: int, before: bool) -> None:
    """The n-th checkpoint write ends the process as a kill would: after it is saved, or before
    (then the trackers have seen an epoch that the checkpoint has not)."""
    save = RunDir.save_checkpoint
    count = {"n": 0}

    def save_then_die(self, *args, **kw):
        count["n"] += 1
        if count["n"] == n:
            monkeypatch.setattr(RunDir, "save_checkpoint", save)
            if not before:
                save(self, *args, **kw)
            raise KeyboardInterrupt
        save(self, *args, **kw)

    monkeypatch.setattr(RunDir, "save_checkpoint", save_then_die)


# --- a quick MNIST run, tracked both ways ---


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tracked")
    uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    env = {
        "MLREPRO_DATA": None,
        "MLFLOW_TRACKING_URI": None,
        "HOME": str(root / "home"),
        "MLREPRO_CACHE": str(root / "cache"),
    }
    saved = {k: os.environ.get(k) for k in env}
    for k, v in env.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    try:
        code = main(
            [
                "run",
                "mnist-mlp",
                "--quick",
                "--out",
                str(root / "runs"),
                "-q",
                "--track",
                "tensorboard,mlflow",
                "--mlflow-uri",
                uri,
            ]
        )
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    assert code == 0
    (run,) = (root / "runs" / "mnist-mlp").iterdir()
    return run, uri


def test_mlflow_run_holds_params_epoch_metrics_artifacts_and_tags(tracked_run):
    run, uri = tracked_run
    (found,) = runs_of(uri, "mnist-mlp")
    assert found.info.status == "FINISHED"
    config = json.loads((run / "config.json").read_text())
    assert found.data.params["lr"] == str(config["config"]["lr"])
    assert found.data.params["hidden"] == "[256, 256]" and found.data.params["epochs"] == "2"
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    client = MlflowClient(uri)
    val = client.get_metric_history(found.info.run_id, "epoch/val_accuracy")
    assert [(m.step, m.value) for m in val] == [
        (r["epoch"], pytest.approx(r["val_accuracy"])) for r in history
    ]
    metrics = json.loads((run / "metrics.json").read_text())
    assert found.data.metrics["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    files = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"config.json", "metrics.json", "history.jsonl", "plots"} <= files
    plots = client.list_artifacts(found.info.run_id, "plots")
    assert [a.path for a in plots] == ["plots/curves.png"]
    tags = found.data.tags
    assert tags["mlrepro.experiment"] == "mnist-mlp" and tags["mlrepro.preset"] == "quick"
    assert tags["mlrepro.seed"] == "0" and tags["mlrepro.run_dir"] == str(run.absolute())
    assert tags["mlrepro.data_sample"] == "true" and tags["mlrepro.data_dir"] == "bundled samples"
    assert tags["mlrepro.data.mnist/train.format"] == config["data"]["mnist/train"]["format"]
    code = tracking.git_commit()
    assert tags.get("mlflow.source.git.commit") == (code[0] if code else None)
    # The run folder names the MLflow run it fed (a resume continues it).
    state = json.loads((run / "tracking.json").read_text())
    assert state["mlflow"]["run_id"] == found.info.run_id


def test_tensorboard_event_files_hold_steps_epochs_hparams_and_figures(tracked_run):
    run, _ = tracked_run
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    epochs = scalars(run / "tensorboard", "epoch/val_accuracy")
    assert [v for _, v in epochs] == pytest.approx([r["val_accuracy"] for r in history])
    per_epoch = epochs[0][0]  # 15 steps of 100 images: the x axis is the global step
    assert [s for s, _ in epochs] == [per_epoch, 2 * per_epoch] and per_epoch == 15
    loss = scalars(run / "tensorboard", "step/loss")
    assert [s for s, _ in loss] == list(range(1, 2 * per_epoch + 1))
    lr = [v for _, v in scalars(run / "tensorboard", "step/lr")]
    assert max(lr) > lr[0] and lr[-1] < max(lr)  # 1cycle: up, then down
    ea = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    ea.Reload()
    assert ea.Tags()["images"] == ["plots/curves"]
    (image,) = ea.Images("plots/curves")
    assert image.encoded_image_string == (run / "plots" / "curves.png").read_bytes()
    metrics = json.loads((run / "metrics.json").read_text())
    assert scalars(run / "tensorboard", "final/test_accuracy")[0][1] == pytest.approx(
        metrics["test_accuracy"]
    )
    # the HParams dashboard: the run's config as hparams, the headline as its metrics
    content = ea.summary_metadata[hp_meta.SESSION_START_INFO_TAG].plugin_data.content
    hparams = hp_meta.parse_session_start_info_plugin_data(content).hparams
    assert hparams["experiment"].string_value == "mnist-mlp" and hparams["seed"].number_value == 0
    assert hparams["lr"].number_value == pytest.approx(
        json.loads((run / "config.json").read_text())["config"]["lr"]
    )
    content = ea.summary_metadata[hp_meta.EXPERIMENT_TAG].plugin_data.content
    experiment = hp_meta.parse_experiment_plugin_data(content)
    assert [m.name.tag for m in experiment.metric_infos] == ["final/test_accuracy"]


# --- a killed run, resumed ---


@pytest.mark.parametrize("before", [False, True], ids=["after-checkpoint", "before-checkpoint"])
def test_kill_and_resume_keeps_one_mlflow_run_and_monotonic_steps(
    capsys, tmp_path, samples, monkeypatch, before
):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    kill_at_checkpoint(monkeypatch, 2 if before else 1, before)
    code, _, err = cli(
        capsys,
        "run",
        "mnist-mlp",
        "--quick",
        "--out",
        tmp_path / "runs",
        "-q",
        "--track",
        "tensorboard,mlflow",
        "--mlflow-uri",
        uri,
    )
    assert code == 130 and "continue with `mlrepro run --resume " in err
    (run,) = (tmp_path / "runs" / "mnist-mlp").iterdir()
    (killed,) = runs_of(uri, "mnist-mlp")
    assert killed.info.status == "KILLED"
    if before:  # the trackers saw epoch 2, which the run will train again
        assert steps(uri, killed.info.run_id, "epoch/val_accuracy") == [1, 2]

    code, _, _ = cli(capsys, "run", "--resume", run, "-q")  # no --track: the folder says
    assert code == 0
    (found,) = runs_of(uri, "mnist-mlp")
    assert found.info.run_id == killed.info.run_id and found.info.status == "FINISHED"
    assert steps(uri, found.info.run_id, "epoch/val_accuracy") == [1, 2]
    assert steps(uri, found.info.run_id, "epoch/loss") == [1, 2]
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    val = MlflowClient(uri).get_metric_history(found.info.run_id, "epoch/val_accuracy")
    assert [m.value for m in val] == pytest.approx([r["val_accuracy"] for r in history])
    # TensorBoard: one value per step, steps increasing, the epochs' values those of the history
    loss = [s for s, _ in scalars(run / "tensorboard", "step/loss")]
    assert loss == list(range(1, 31))
    epochs = scalars(run / "tensorboard", "epoch/val_accuracy")
    assert [s for s, _ in epochs] == [15, 30]
    assert [v for _, v in epochs] == pytest.approx([r["val_accuracy"] for r in history])


# --- the DQN-style loop and the classic estimators ---


def test_a_loop_of_its_own_logs_through_the_same_trackers_and_resumes(tmp_path):
    """RunContext.epochs (DQN's lifecycle): rows reach both trackers; a killed loop resumes."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    rd = RunDir.create(tmp_path / "run")
    record = {"experiment": "loop", "preset": None, "seed": 0, "config": {"epochs": 4}}
    rd.write_config(record)

    def ctx_for(resume: bool):
        tracker = Trackers([TensorBoardTracker(), MLflowTracker(uri)])
        tracker.start(rd.path, record, resume=resume)
        return RunContext(
            rd, 0, torch.device("cpu"), resume=resume, verbose=False, config=record, tracker=tracker
        ), tracker

    def step(epoch):
        if epoch == 2 and not resumed:
            raise KeyboardInterrupt
        return {"test_score_mean": 10.0 * epoch, "loss": 1.0 / (epoch + 1)}

    state = {"w": torch.zeros(1)}
    resumed = False
    ctx, tracker = ctx_for(False)
    with pytest.raises(KeyboardInterrupt):
        ctx.epochs(4, step, state=lambda: dict(state), load_state=state.update)
    tracker.close("KILLED")
    resumed = True
    ctx, tracker = ctx_for(True)
    rows = ctx.epochs(4, step, state=lambda: dict(state), load_state=state.update)
    tracker.finish({"test_score": rows[-1]["test_score_mean"]}, ("test_score",))
    tracker.close()
    (found,) = runs_of(uri, "loop")
    assert steps(uri, found.info.run_id, "epoch/test_score_mean") == [1, 2, 3, 4]
    assert found.data.metrics["test_score"] == 30.0
    assert scalars(rd.path / "tensorboard", "epoch/test_score_mean") == [
        (1, 0.0),
        (2, 10.0),
        (3, 20.0),
        (4, 30.0),
    ]


@pytest.mark.parametrize(
    "name, metric, figure",
    [("linreg-line", "test_r2", "fit"), ("kmeans-cola", "inertia", "iterations")],
)
def test_classic_estimators_log_params_final_metrics_and_figures(
    capsys, tmp_path, samples, name, metric, figure
):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, out, _ = cli(
        capsys,
        "run",
        name,
        "--quick",
        "--out",
        tmp_path,
        "-q",
        "--track",
        "mlflow,tensorboard",
        "--mlflow-uri",
        uri,
    )
    assert code == 0
    run = Path(out.strip().splitlines()[-1])
    metrics = json.loads((run / "metrics.json").read_text())
    (found,) = runs_of(uri, name)
    assert found.data.metrics[metric] == pytest.approx(metrics[metric])
    config = json.loads((run / "config.json").read_text())["config"]
    assert found.data.params == {k: str(v) for k, v in tracking.flatten(config).items()}
    plots = MlflowClient(uri).list_artifacts(found.info.run_id, "plots")
    assert [a.path for a in plots] == [f"plots/{figure}.png"]
    assert scalars(run / "tensorboard", f"final/{metric}")[0][1] == pytest.approx(metrics[metric])
    ea = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    ea.Reload()
    assert ea.Tags()["images"] == [f"plots/{figure}"]


# --- sweeps: a parent run, continued when the sweep is ---


def test_a_sweep_is_a_parent_run_continued_when_the_sweep_is(
    capsys, tmp_path, samples, monkeypatch
):
    from mlrepro.classic import LinearRegressionGD

    fit = LinearRegressionGD.fit
    calls = {"n": 0}

    def fit_dies_on_the_second_seed(self, *a, **kw):
        calls["n"] += 2 if self.solver == "gd" else 0
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return fit(self, *a, **kw)

    monkeypatch.setattr(LinearRegressionGD, "fit", fit_dies_on_the_second_seed)
    monkeypatch.chdir(tmp_path)  # the default store: sqlite:///runs/mlflow.db, next to --out
    argv = ["run", "linreg-line", "--quick", "--seeds", "0,1", "-q", "--track", "mlflow"]
    code, _, _ = cli(capsys, *argv)
    assert code == 130
    uri = f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    parent, child = sorted(
        runs_of(uri, "linreg-line"), key=lambda r: "mlflow.parentRunId" in r.data.tags
    )
    assert parent.info.status == "KILLED" and parent.data.tags["mlrepro.group"] == "sweep"
    assert child.data.tags["mlrepro.seed"] == "0"  # the killed seed 1 had logged nothing: no run

    monkeypatch.setattr(LinearRegressionGD, "fit", fit)
    assert cli(capsys, *argv)[0] == 0
    found = runs_of(uri, "linreg-line")
    parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in found if "mlflow.parentRunId" in r.data.tags]
    assert [p.info.run_id for p in parents] == [parent.info.run_id]
    assert parents[0].info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert sorted(c.data.tags["mlrepro.seed"] for c in children) == ["0", "1"]
    sweep = next((tmp_path / "runs" / "linreg-line").glob("sweep-*"))
    summary = json.loads((sweep / "summary.json").read_text())
    mean = summary["metrics"]["test_r2"]["mean"]
    assert parents[0].data.metrics["test_r2"] == pytest.approx(mean)
    files = [a.path for a in MlflowClient(uri).list_artifacts(parent.info.run_id)]
    assert files == ["summary.json"]


# --- failures: one line before training, or a warning while the run goes on ---


def test_a_bad_uri_or_tracker_is_one_line_before_anything_is_made(
    capsys, tmp_path, samples, monkeypatch
):
    out = tmp_path / "runs"
    code, _, err = cli(
        capsys,
        "run",
        "linreg-line",
        "--quick",
        "--out",
        out,
        "--track",
        "mlflow",
        "--mlflow-uri",
        "nope://x",
    )
    one_line_error(code, err, "--mlflow-uri: cannot open 'nope://x'")
    with socket.socket() as s:  # a port nothing listens on: refused at once, no retries
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    code, _, err = cli(
        capsys,
        "run",
        "linreg-line",
        "--quick",
        "--out",
        out,
        "--track",
        "mlflow",
        "--mlflow-uri",
        f"http://127.0.0.1:{port}",
    )
    one_line_error(code, err, f"--mlflow-uri: cannot open 'http://127.0.0.1:{port}'")
    assert time.perf_counter() - start < 30
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nope://y")
    code, _, err = cli(capsys, "run", "linreg-line", "--quick", "--out", out, "--track", "mlflow")
    one_line_error(code, err, "MLFLOW_TRACKING_URI: cannot open 'nope://y'")
    code, _, err = cli(capsys, "run", "linreg-line", "--quick", "--out", out, "--track", "wandb")
    one_line_error(code, err, "--track: unknown 'wandb'; valid: tensorboard, mlflow")
    code, _, err = cli(capsys, "run", "linreg-line", "--out", out, "--mlflow-uri", "sqlite:///x.db")
    one_line_error(code, err, "--mlflow-uri goes with --track mlflow")
    assert not out.exists()


EARLY = """
import json, sys
from mlrepro import writer_process as w
Pipe, seen = w.WriterPipe, []
class Counted(Pipe):
    def __init__(self, specs):
        torch_loaded = "torch" in sys.modules
        super().__init__(specs)
        seen.append([torch_loaded, self.proc.pid, [s["kind"] for s in specs]])
w.WriterPipe = Counted
from mlrepro.cli import main
code = main(sys.argv[1:])
imported = sorted(m for m in ("mlflow", "tensorboard") if m in sys.modules)
print(json.dumps({"code": code, "spawned": seen, "waiting": len(w._early), "imported": imported}))
"""


def test_the_writers_start_before_torch_is_imported_and_are_the_ones_the_run_uses(
    tmp_path, samples
):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = ["run", "linreg-line", "--quick", "--out", str(tmp_path / "runs"), "-q"]
    track = ["--track", "tensorboard,mlflow", "--mlflow-uri", uri]
    done = subprocess.run(
        [sys.executable, "-c", EARLY, *argv, *track],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # one writer process for both, started before torch: its start-up overlaps the run's, the
    # run's trackers took it over, and the training process never imported MLflow or TensorBoard
    assert report["code"] == 0 and report["waiting"] == 0 and report["imported"] == []
    assert report["spawned"][0][0] is False and report["spawned"][0][2] == ["mlflow", "tensorboard"]
    assert len(report["spawned"]) == 1
    (found,) = runs_of(uri, "linreg-line")
    assert found.info.status == "FINISHED"
    (run,) = (tmp_path / "runs" / "linreg-line").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert scalars(run / "tensorboard", "final/test_r2")[0][1] == pytest.approx(metrics["test_r2"])
    # a writer nobody takes over (the command failed before its trackers) ends with the command
    missing = tmp_path / "no-such-folder"
    done = subprocess.run(
        [sys.executable, "-c", EARLY, *argv, *track, "--data-dir", str(missing)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stderr == f"mlrepro: error: --data-dir: {missing} is not a folder\n"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 2 and report["waiting"] == 2 and len(report["spawned"]) == 1
    with pytest.raises(ProcessLookupError):
        os.kill(report["spawned"][0][1], 0)
    assert len(runs_of(uri, "linreg-line")) == 1


@pytest.mark.parametrize("kind, module", [("mlflow", "mlflow"), ("tensorboard", "tensorboard")])
def test_a_missing_extra_is_one_line_naming_it(capsys, tmp_path, monkeypatch, kind, module):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as when not installed
    code, _, err = cli(capsys, "run", "linreg-line", "--quick", "--out", tmp_path, "--track", kind)
    one_line_error(
        code, err, f"--track {kind} needs {kind.split('.')[0]}: pip install 'mlrepro[track]'"
    )
    assert not any(tmp_path.iterdir())


def test_a_tracker_that_fails_mid_run_costs_the_run_nothing(tmp_path, samples, capsys):
    class Broken(tracking.Tracker):
        kind = "broken"

        def log_epoch(self, stage, step, row):
            raise ConnectionError("the server went away")

    run_dir, metrics = run_experiment(
        "mnist-mlp", preset="quick", out=tmp_path, device="cpu", verbose=False, track=Broken()
    )
    assert json.loads((run_dir.path / "metrics.json").read_text())["test_accuracy"] > 0.5
    note = "broken tracking stopped (log_epoch): ConnectionError: the server went away"
    assert note in metrics["notes"]
    assert capsys.readouterr().err.count("mlrepro: warning: " + note) == 1


# --- library use and small parts ---


def test_a_tracker_is_a_learner_callback(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(64, 3), torch.randint(0, 2, (64,))
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
    learner = Learner(
        model, opt, torch.nn.CrossEntropyLoss(), scheduler=sched, metrics=["accuracy"]
    )
    batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
    with TensorBoardTracker(tmp_path / "tb") as tb:
        learner.fit(batches, 2, callbacks=[tb])
    lrs = scalars(tmp_path / "tb", "step/lr")
    assert [s for s, _ in lrs] == list(range(1, 9))  # the LR each step trained with (float32)
    assert [v for _, v in lrs] == pytest.approx([0.1] * 4 + [0.05] * 4)
    assert [s for s, _ in scalars(tmp_path / "tb", "epoch/accuracy")] == [4, 8]


def test_flatten_and_git_commit_outside_a_checkout(tmp_path):
    assert tracking.flatten({"a": 1, "b": {"c": (2, 3)}, "d": None}) == {
        "a": 1,
        "b.c": "[2, 3]",
        "d": None,
    }
    (tmp_path / "x.py").write_text("")
    assert tracking.git_commit(tmp_path / "x.py") is None
    assert (
        "mlflow.source.git.commit" not in tracking.run_tags({"experiment": "x"})
        or tracking.git_commit() is not None
    )


# --- a real MLflow server on the SQLite store ---


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(store: str, cwd: Path):
    """`mlflow server` on 127.0.0.1 against `store`; stopped on exit, whatever happened."""
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = open(cwd / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            store,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "mlflow server did not start:\n" + (cwd / "server.log").read_text()[-3000:]
                )
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def rest(url: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"{url}/api/2.0/mlflow/{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_mlflow_server_on_the_sqlite_store_serves_the_run(capsys, tmp_path, samples):
    store = f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    code, out, _ = cli(
        capsys,
        "run",
        "linreg-line",
        "--quick",
        "--out",
        tmp_path / "runs",
        "-q",
        "--track",
        "mlflow",
    )  # the default store: RUNS/mlflow.db
    assert code == 0
    run = Path(out.strip().splitlines()[-1])
    run_id = json.loads((run / "tracking.json").read_text())["mlflow"]["run_id"]
    with mlflow_server(store, tmp_path) as url:
        exp = rest(url, "experiments/get-by-name?experiment_name=linreg-line")["experiment"]
        found = rest(url, "runs/search", {"experiment_ids": [exp["experiment_id"]]})["runs"]
        assert [r["info"]["run_id"] for r in found] == [run_id]
        data = found[0]["data"]
        metrics = json.loads((run / "metrics.json").read_text())
        test_r2 = next(m["value"] for m in data["metrics"] if m["key"] == "test_r2")
        assert test_r2 == pytest.approx(metrics["test_r2"])
        assert {"key": "lr", "value": "0.1"} in data["params"]
        files = rest(url, f"artifacts/list?run_id={run_id}")["files"]
        assert {"config.json", "metrics.json", "plots"} <= {f["path"] for f in files}
        # A second run logs through the server's REST API (artifacts proxied to its folder).
        code, out, _ = cli(
            capsys,
            "run",
            "linreg-line",
            "--quick",
            "--seed",
            "1",
            "--out",
            tmp_path / "runs",
            "-q",
            "--track",
            "mlflow",
            "--mlflow-uri",
            url,
        )
        assert code == 0
        found = rest(url, "runs/search", {"experiment_ids": [exp["experiment_id"]]})["runs"]
        seeds = [t["value"] for r in found for t in r["data"]["tags"] if t["key"] == "mlrepro.seed"]
        assert sorted(seeds) == ["0", "1"]
    with pytest.raises(OSError):  # stopped
        urllib.request.urlopen(f"{url}/health", timeout=2)


def test_one_writer_process_serves_both_and_a_failure_stays_with_its_tracker(tmp_path):
    from mlrepro.errors import ConfigError, MlreproError
    from mlrepro.writer_process import WriterPipe, mlflow_spec

    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database, " * 64)
    log_dir = tmp_path / "tb"
    pipe = WriterPipe(
        [
            mlflow_spec(f"sqlite:///{bad}"),
            {"kind": "tensorboard", "log_dir": str(log_dir), "flush_secs": 30},
        ]
    )
    # TensorBoard works on while MLflow could not open; each failure reaches its own kind only
    pipe.call("tensorboard", "log_epoch", None, 7, {"loss": 0.5, "epoch": 1})
    with pytest.raises(ConfigError, match="--mlflow-uri: cannot open"):
        pipe.wait("mlflow", 0)
    pipe.call("tensorboard", "no_such_op")
    with pytest.raises(MlreproError, match="no_such_op"):
        pipe.call("tensorboard", "close", reply=True)
    pipe.call("tensorboard", "close", reply=True)
    assert scalars(log_dir, "epoch/loss") == [(7, 0.5)]
    with pytest.raises(MlreproError, match="no mlflow writer"):
        pipe.call("mlflow", "close", reply=True)
    pipe.stop()  # a writer that wrote is told to exit, not waited for: it ends on its own
    assert pipe.proc.wait(timeout=30) == 0
