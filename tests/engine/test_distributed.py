"""torchrun with 2 gloo processes on CPU trains like one process with the same global batch."""

import json
import os
import subprocess
import sys

import pytest
import torch

from mlrepro.runner import run_experiment

# A few steps of the fast network on a slice of CIFAR-10: global batch 128 = 2 × 64.
OVERRIDES = {
    "epochs": "2",
    "train_limit": "512",
    "test_limit": "499",
    "batch_size": "128",
    "eval_each_epoch": "true",
    "tta": "false",
}


@pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="needs torch.distributed with gloo",
)
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path, data_dir):
    if data_dir is None:
        pytest.skip("needs the CIFAR-10 data (MLREPRO_DATA)")
    extra = [f"--{k.replace('_', '-')}={v}" for k, v in OVERRIDES.items()]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "mlrepro",
        "run",
        "fast-cifar10",
        "--quick",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        str(tmp_path / "ddp"),
        "--data-dir",
        str(data_dir),
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]

    # Only rank 0 wrote a run folder.
    runs = list((tmp_path / "ddp" / "fast-cifar10").iterdir())
    assert len(runs) == 1
    ddp_metrics = json.loads((runs[0] / "metrics.json").read_text())
    ddp_history = [
        json.loads(line) for line in (runs[0] / "history.jsonl").read_text().splitlines()
    ]
    assert json.loads((runs[0] / "config.json").read_text())["processes"] == 2
    assert (runs[0] / "checkpoint.pt").exists()

    run_dir, single = run_experiment(
        "fast-cifar10",
        preset="quick",
        overrides=OVERRIDES,
        out=tmp_path / "one",
        device="cpu",
        data_dir=str(data_dir),
        verbose=False,
    )
    single_history = run_dir.history()
    assert ddp_metrics["processes"] == 2 and single["processes"] == 1
    assert ddp_metrics["steps"] == single["steps"] == 2 * (512 // 128)
    # Same samples, same augmentation, gradients averaged: only BN's batch statistics differ (64
    # images per process instead of 128), so the curves agree closely but not bit for bit.
    for a, b in zip(ddp_history, single_history):
        assert abs(a["loss"] - b["loss"]) < 0.05, (a, b)
        assert abs(a["val_loss"] - b["val_loss"]) < 0.1, (a, b)
    assert abs(ddp_metrics["test_accuracy"] - single["test_accuracy"]) < 0.06
    # The reduced test metrics count all 499 images, not one process's 250 or 249: an accuracy
    # strictly between 0 and 1 is a multiple of 1/499 only then (499 is prime).
    acc = ddp_metrics["test_accuracy"]
    assert 0 < acc < 1 and abs(acc * 499 - round(acc * 499)) < 1e-3
