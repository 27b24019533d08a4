"""benchmarks/gpu_evidence.py: time boxes that end training cleanly, runs that are cut or would not
fit, the evidence file, and (slow) the whole command at toy scale on the CPU."""

import importlib.util
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from mlrepro.engine import LambdaCallback, Learner

REPO = Path(__file__).resolve().parents[1]

spec = importlib.util.spec_from_file_location(
    "gpu_evidence", REPO / "benchmarks" / "gpu_evidence.py"
)
ge = importlib.util.module_from_spec(spec)
sys.modules["gpu_evidence"] = ge  # its dataclasses look their module up
spec.loader.exec_module(ge)


def test_a_stage_box_keeps_the_later_stages_minimums_or_the_stage_is_skipped():
    assert ge.plan_box(100, 30, left_s=500, later_min_s=100) == (100, "")
    assert ge.plan_box(100, 30, left_s=150, later_min_s=100) == (50, "")  # cut to leave 100
    box, why = ge.plan_box(100, 30, left_s=120, later_min_s=100)
    assert box is None and "under this stage's minimum of 30 s" in why
    assert ge.plan_box(100, 30, left_s=-5, later_min_s=0)[0] is None
    assert ge.predicted_fits(None, 1) and ge.predicted_fits(9, 10)
    assert not ge.predicted_fits(11, 10) and not ge.predicted_fits(None, 0)


def tiny_learner() -> Learner:
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    return Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss())


def test_the_deadline_ends_fit_cleanly_at_the_first_step_past_it_and_then_lets_go():
    data = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(10)]
    now = [0.0]  # a fake clock: one second per batch
    tick = LambdaCallback(on_batch_end=lambda learner, logs: now.__setitem__(0, now[0] + 1))
    lrn = tiny_learner()
    with ge.Deadline(at=3.0, clock=lambda: now[0]) as deadline:
        lrn.fit(data, 2, callbacks=[tick])
    assert deadline.fired and "time box" in lrn.stop_reason
    assert lrn.global_step == 3 and lrn.epoch == 0  # steps at t = 0, 1, 2; none at t = 3
    lrn.fit(data, 1)  # the hook is gone: training goes on
    assert lrn.epoch == 1 and lrn.stop_reason is None
    with ge.Deadline(at=1e18) as never:
        tiny_learner().fit(data, 1)
    assert not never.fired


def context(tmp_path, *, clock=time.time, deadline=None, data_dir=None) -> "ge.StageContext":
    return ge.StageContext(
        "test",
        out=tmp_path / "out",
        results_dir=tmp_path / "results",
        data_dir=str(data_dir) if data_dir else None,
        device="cpu",
        deadline=time.time() + 60 if deadline is None else deadline,
        smoke=True,
        force=False,
        clock=clock,
    )


def test_a_run_predicted_not_to_fit_is_skipped_and_recorded(tmp_path):
    sc = context(tmp_path)
    assert sc.run("mnist-mlp", "quick", predict_s=3600) is None
    saved = json.loads(sc.path.read_text())
    assert saved["runs"] == [] and "it would take ≈ 3600 s" in saved["skipped"][0]["why"]
    assert not (tmp_path / "out" / "runs").exists()
    assert sc.aggregate([None]) is None and "no complete run" in sc.record["notes"][0]


def test_a_run_cut_by_the_box_is_partial_keeps_its_metrics_and_writes_no_results_row(
    tmp_path, data_dir
):
    if data_dir is None:
        pytest.skip("needs the MNIST data (MLREPRO_DATA)")
    history = tmp_path / "out" / "runs" / "test" / "run-s0" / "history.jsonl"

    def clock():  # the box ends once the first of the run's two epochs is logged
        return 100.0 if history.exists() and history.read_text().strip() else 0.0

    sc = context(tmp_path, clock=clock, deadline=50.0, data_dir=data_dir)
    run = sc.run("mnist-mlp", "quick")
    assert run.partial and run.metrics is not None  # tested after the cut, metrics.json written
    assert run.metrics["epochs"] == 1 and len(history.read_text().splitlines()) == 1
    assert run.entry["stop_reason"] and "test_accuracy" in run.entry["metrics"]
    assert sc.aggregate([run]) is None and not (tmp_path / "results").exists()


def test_cifar_figures_are_named_by_the_copy_they_were_read_from(tmp_path):
    def run_dir(source):
        d = tmp_path / source.replace("/", "_")
        d.mkdir()
        (d / "config.json").write_text(
            json.dumps(
                {
                    "data": {
                        "cifar10/train": {"dataset": "cifar10", "split": "train", "source": source}
                    }
                }
            )
        )
        return d

    assert ge.data_label(run_dir("/d/cifar-10-jpeg/cifar-10-jpeg.tar.gz")) == ge.JPEG_COPY
    assert ge.data_label(run_dir("/d/cifar-10-batches-py")) == "cifar10"
    assert ge.data_label(tmp_path / "missing") is None


def test_pytest_reports_are_counted_and_gpu_tests_found(tmp_path):
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<testsuites><testsuite tests="3" failures="1" errors="0" skipped="1">'
        '<testcase classname="t" name="a" time="0.5"/>'
        '<testcase classname="t" name="b"><failure message="boom"/></testcase>'
        '<testcase classname="t" name="c"><skipped message="no CUDA"/></testcase>'
        "</testsuite></testsuites>"
    )
    counts = ge.junit_counts(xml)
    assert (counts["passed"], counts["failures"], counts["skipped"]) == (1, 1, 1)
    assert counts["cases"][1] == {
        "test": "t::b",
        "outcome": "failure",
        "time_s": 0.0,
        "message": "boom",
    }
    assert "tests/engine/test_gpu_paths.py" in ge.gpu_test_files()


def test_the_bundle_leaves_out_checkpoints(tmp_path):
    out = tmp_path / "out"
    (out / "runs" / "r").mkdir(parents=True)
    (out / "runs" / "r" / "metrics.json").write_text("{}")
    (out / "runs" / "r" / "checkpoint.pt").write_bytes(b"x")
    ge.bundle(out, out / "gpu-evidence.tar.gz")  # inside OUT, as --export OUT does
    with tarfile.open(out / "gpu-evidence.tar.gz") as tar:
        assert tar.getnames() == ["out/runs/r/metrics.json"]


def main_(capsys, *argv):
    code = ge.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_without_budget_every_stage_is_skipped_with_why(tmp_path, capsys, data_dir):
    if data_dir is None:
        pytest.skip("needs the datasets (MLREPRO_DATA)")
    code, err = main_(
        capsys,
        "--smoke",
        "--budget-s",
        "0",
        "--out",
        tmp_path / "out",
        "--data-dir",
        data_dir,
        "--export",
        tmp_path / "export",
        "--quiet",
    )
    assert code == 0, err
    evidence = json.loads((tmp_path / "out" / "evidence.json").read_text())
    assert evidence["data"]["ok"] and evidence["smoke"] and evidence["finished"]
    assert [s["name"] for s in evidence["stages"]] == ge.STAGE_NAMES
    assert all(
        s["status"] == "skipped" and "budget left" in s["skipped"][0]["why"]
        for s in evidence["stages"]
    )
    assert json.loads((tmp_path / "export" / "evidence.json").read_text()) == evidence
    assert (tmp_path / "export" / "gpu-evidence.tar.gz").is_file()
    assert not (tmp_path / "out" / "results").exists()


def test_existing_results_are_refused_before_anything_runs(tmp_path, capsys, data_dir):
    if data_dir is None:
        pytest.skip("needs the datasets (MLREPRO_DATA)")
    results = tmp_path / "results"
    results.mkdir()
    (results / "fast-cifar10.gpu.json").write_text("{}")
    args = [
        "--smoke",
        "--budget-s",
        "0",
        "--data-dir",
        data_dir,
        "--results-dir",
        results,
        "--quiet",
    ]
    code, err = main_(capsys, *args, "--out", tmp_path / "a")
    assert code == 2 and "fast-cifar10.gpu.json exists" in err and "--force" in err
    assert not (tmp_path / "a").exists()
    assert main_(capsys, *args, "--out", tmp_path / "b", "--force")[0] == 0
    code, err = main_(capsys, "--smoke", "--results-dir", REPO / "results", "--data-dir", data_dir)
    assert code == 2 and "never writes the repository's results/" in err
    code, err = main_(capsys, "--smoke", "--stages", "fast-cifar10,typo", "--data-dir", data_dir)
    assert code == 2 and "unknown stage 'typo'" in err


@pytest.mark.slow
def test_smoke_runs_every_stage_at_toy_scale_and_writes_the_evidence(tmp_path, data_dir):
    if data_dir is None:
        pytest.skip("needs the datasets (MLREPRO_DATA)")
    out = tmp_path / "out"
    start = time.time()
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/gpu_evidence.py",
            "--smoke",
            "--out",
            str(out),
            "--data-dir",
            str(data_dir),
            "--export",
            str(tmp_path / "export"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    took = time.time() - start
    assert done.returncode == 0, done.stderr[-4000:]
    evidence = json.loads((out / "evidence.json").read_text())
    # pytest -rP
    print(
        f"smoke: {took:.0f} s; "
        + ", ".join(f"{s['name']} {s['status']} {s.get('elapsed_s')} s" for s in evidence["stages"])
    )
    assert evidence["elapsed_s"] <= evidence["budget_s"] + 15  # the budget holds (kills included)
    stages = {s["name"]: s for s in evidence["stages"]}
    assert all(s["status"] in ("done", "partial") for s in stages.values()), stages
    rows = {r["file"].rsplit("/", 1)[1] for s in stages.values() for r in s["results"]}
    assert rows <= {
        "fast-cifar10.gpu.json",
        "fast-cifar10.gpu-96.json",
        "capsnet-mnist.gpu.json",
        "capsnet-multimnist.gpu.json",
        "superconvergence.gpu.json",
        "superconvergence.gpu-mnist.json",
    }
    for name in rows:  # through the runner: hardware, torch, seeds, data provenance
        row = json.loads((out / "results" / name).read_text())
        assert row["hardware"]["torch"] == torch.__version__ and row["seeds"] and row["data"]
    assert "fast-cifar10.gpu.json" in rows  # the first stage always has room at toy scale
    fast = stages["fast-cifar10"]
    assert fast["comparison"]["data"] == ge.JPEG_COPY and fast["comparison"]["airbench94"]
    assert fast["runs"][0]["role"] == "warm-up"
    tests = stages["gpu-tests"]["comparison"]
    assert tests["tests"] >= 5 and tests["failures"] == tests["errors"] == 0  # skipped: no CUDA
    assert (tmp_path / "export" / "gpu-evidence.tar.gz").is_file()
