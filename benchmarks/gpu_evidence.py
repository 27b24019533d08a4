"""GPU evidence in one command: the GPU results that matter most, each stage in its own time box,
all within one wall-time budget, written after every stage.

Run:   make gpu-evidence                    (one CUDA GPU; default budget 510 s = 8.5 min)
       python benchmarks/gpu_evidence.py --budget-s 510 --export DIR --stages fast-cifar10,...
Smoke: python benchmarks/gpu_evidence.py --smoke      (every stage at toy scale on the CPU, into a
       temporary folder, never into results/)

Stages, in order of value (each one process, so a hang or a CUDA error costs only its own box):
  fast-cifar10       `fast-cifar10 --preset gpu`, 3 seeds after a warm-up run (compilation),
                     timed as airbench times (training only), beside airbench94's 3.83 s (A100)
  fast-cifar10-96    `fast-cifar10 --preset gpu-96` (airbench96's net and recipe), one seed after a
                     warm-up, against the blog's 95.84 % (WRN-28-10, 200 epochs)
  capsnet            `capsnet-mnist --preset gpu` for the epochs that fit (an epoch is measured
                     first), then `capsnet-multimnist --preset gpu` on as many pairs as fit
  superconvergence   `superconvergence --preset gpu` (WRN-16-4; `gpu-mnist` without Fashion-MNIST):
                     piecewise vs 1cycle at the range test's LR, epochs and seconds to the target
  gpu-tests          `pytest -m gpu` on the test files that hold GPU tests (bf16 autocast,
                     channels_last, torch.compile, DDP over NCCL, ONNX export of a CUDA-trained run)

Time boxes. A stage gets its own box, cut to what is left of the budget after keeping every later
stage's minimum; a stage whose cut box is below its minimum is skipped, with why. Inside a stage,
every optimizer step checks the box (a global pre-step hook raising the engine's StopTraining, which
`fit` catches): a run cut that way still tests and writes its metrics, but is marked partial and
kept out of the results rows; a run predicted not to fit in what is left is not started. A stage
still running 20 s after its box is killed; what it wrote stays.

Outputs, rewritten after every stage: OUT/evidence.json (what ran, what was skipped and why, the
comparisons), RESULTS/EXP.PRESET.json through the project's runner (`aggregate_runs`: mean ± std,
hardware, torch and CUDA versions, seeds, times, data provenance), OUT/runs/ (every run folder),
OUT/logs/. RESULTS defaults to OUT/results: a results file is replaced only with --force, so
`--results-dir results` never overwrites committed evidence by default. --export DIR also writes
DIR/evidence.json and DIR/gpu-evidence.tar.gz (OUT without checkpoints) after every stage.

Data, where the GPU machine gets only a copy of the checkout: copy the datasets into its ignored
folder .device-data/ and send that along (`mkdir -p .device-data && cp -r ../shared/data/mnist
../shared/data/cifar-10-jpeg .device-data/`: 31 MB; fashion-mnist, 31 MB more, lets the
superconvergence stage run its `gpu` preset instead of `gpu-mnist`). The data folder is --data-dir,
else $MLREPRO_DATA, else .device-data/, else ../shared/data; its files are checked against their
checksums before anything trains, and every CIFAR-10 figure is named by the copy it was read from
(the runs' recorded provenance): "CIFAR-10 (JPEG q75 copy)".

No install step: a GPU machine without network access cannot fetch a CUDA torch, so the script runs
on the python3 and torch it is started with (`make gpu-evidence`: .venv's if there is one, else
python3), imports mlrepro from this checkout's src/, and records the torch version and whether it is
older than the release CI tests.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gzip
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

REPO = Path(__file__).resolve().parents[1]
# The evidence is of this checkout's code: its src/ goes first, installed or not (on the GPU
# machine it is not installed), so mlrepro is imported only after the path is set (E402).
sys.path.insert(0, str(REPO / "src"))

from mlrepro import __version__  # noqa: E402
from mlrepro.engine import RunDir, StopTraining, hardware_info  # noqa: E402
from mlrepro.errors import MlreproError  # noqa: E402
from mlrepro.io import atomic_write_json  # noqa: E402

if TYPE_CHECKING:
    from typing_extensions import Self

SCRIPT = "benchmarks/gpu_evidence.py"
DEFAULT_BUDGET_S = 510.0  # 8.5 min: a 10-minute device command with room for start-up and copies
SMOKE_BUDGET_S = 170.0
GRACE_S = 20.0  # a stage still running this long after its box is killed (--smoke: half)
WARMUP_SEED = 1000  # the warm-up runs' seed, outside the measured seeds
JPEG_COPY = "CIFAR-10 (JPEG q75 copy)"
# The JPEG copy's archive, cifar-10-jpeg/cifar-10-jpeg.tar.gz, as its README gives it.
CIFAR_JPEG_SHA256 = "50c8d948fcc8db1d836d41055ad11e49a03b4e6a9eb95c64e43dd793412333a3"

# What the stages compare against.
AIRBENCH94 = {"accuracy": 0.9401, "time_s": 3.83, "gpu": "A100", "source": "airbench94.py (README)"}
AIRBENCH96 = {"accuracy": 0.9603, "time_s": 34.7, "gpu": "A100", "source": "airbench96.py (README)"}
BLOG_WRN = {"accuracy": 0.9584, "epochs": 200, "network": "WRN-28-10", "source": "blog"}
CAPSNET = {"paper_error_pct": 0.25, "port_error_pct": 0.34, "port_epochs": 50}
MULTIMNIST = {
    "paper_error_pct": 5.2,
    "paper_pairs": 60_000_000,
    "ours_cpu": {"12000 pairs": 86.1, "60000 pairs": 32.1},
}


# --- time boxes ---


def plan_box(
    box_s: float, min_s: float, left_s: float, later_min_s: float
) -> tuple[float | None, str]:
    """The box a stage gets: its own, cut to what is left after keeping the later stages'
    minimums; (None, why) when that is below its own minimum."""
    box = min(box_s, left_s - later_min_s)
    if box < min_s:
        return None, (
            f"{max(left_s, 0):.0f} s of the budget left, {later_min_s:.0f} s kept for "
            f"later stages: {max(box, 0):.0f} s is under this stage's minimum of "
            f"{min_s:.0f} s"
        )
    return box, ""


class Deadline:
    """Ends training at wall-clock time `at`: while active, every optimizer step first checks the
    clock and raises the engine's StopTraining once it is past (`Learner.fit` ends cleanly on it;
    anything else, such as an LR range test, passes it on)."""

    def __init__(self, at: float, clock: Callable[[], float] = time.time):
        self.at, self.clock = at, clock
        self.fired = False
        self._handle = None

    def _check(self, optimizer, args, kwargs) -> None:
        if self.clock() >= self.at:
            self.fired = True
            raise StopTraining("the stage's time box ended")

    def __enter__(self) -> Self:
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        self._handle = register_optimizer_step_pre_hook(self._check)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()


def predicted_fits(predict_s: float | None, left_s: float) -> bool:
    """Whether a run predicted to take `predict_s` (None: unknown) starts with `left_s` left."""
    return left_s > 0 and (predict_s is None or predict_s <= left_s)


# --- one stage, inside its own process ---


@dataclasses.dataclass
class Run:
    run_dir: Path
    metrics: dict | None  # None when the run stopped before writing metrics.json
    partial: bool
    entry: dict


class StageContext:
    """What a stage function gets: its deadline, folders and device, and `run`/`aggregate`, which
    keep the stage's record (OUT/stages/NAME.json) up to date after every run."""

    def __init__(
        self,
        name: str,
        *,
        out: Path,
        results_dir: Path,
        data_dir: str,
        device: str,
        deadline: float,
        smoke: bool,
        force: bool,
        clock: Callable[[], float] = time.time,
    ):
        self.name, self.out, self.results_dir, self.data_dir = name, out, results_dir, data_dir
        self.device, self.deadline, self.smoke, self.force, self.clock = (
            device,
            deadline,
            smoke,
            force,
            clock,
        )
        self.record: dict[str, Any] = {
            "name": name,
            "runs": [],
            "skipped": [],
            "results": [],
            "comparison": {},
            "notes": [],
        }

    @property
    def path(self) -> Path:
        return self.out / "stages" / f"{self.name}.json"

    def left(self) -> float:
        return self.deadline - self.clock()

    def save(self) -> None:
        atomic_write_json(self.path, self.record)

    def toy(self, overrides: dict) -> dict:
        """`overrides` under --smoke (toy scale on the CPU), nothing otherwise."""
        return dict(overrides) if self.smoke else {}

    def note(self, text: str) -> None:
        self.record["notes"].append(text)
        self.save()

    def skip(self, what: str, why: str) -> None:
        self.record["skipped"].append({"what": what, "why": why})
        self.save()

    def run(
        self,
        experiment: str,
        preset: str,
        *,
        seed: int = 0,
        overrides: dict | None = None,
        role: str = "run",
        predict_s: float | None = None,
    ) -> Run | None:
        """One run through the project's runner, under the stage's deadline; None if not started
        (predicted not to fit in what is left)."""
        from mlrepro.runner import run_experiment

        what = f"{experiment} --preset {preset} ({role}, seed {seed})"
        left = self.left()
        if not predicted_fits(predict_s, left):
            guess = f"; it would take ≈ {predict_s:.0f} s" if predict_s is not None else ""
            self.skip(what, f"{max(left, 0):.0f} s left in the box{guess}")
            return None
        path = self.out / "runs" / self.name / f"{role}-s{seed}"
        start = self.clock()
        stop = error = None
        with Deadline(self.deadline, self.clock) as deadline:
            try:
                _, metrics = run_experiment(
                    experiment,
                    preset=preset,
                    overrides=overrides,
                    seed=seed,
                    device=self.device,
                    data_dir=self.data_dir,
                    run_path=path,
                    full_data_only=True,
                )
            except StopTraining as e:  # the box ended outside a fit: no metrics.json
                metrics, stop = None, str(e)
            except Exception as e:  # noqa: BLE001 - recorded; the stage goes on to its next step
                traceback.print_exc()
                metrics, error = None, f"{type(e).__name__}: {e}"
        entry = {
            "role": role,
            "experiment": experiment,
            "preset": preset,
            "seed": seed,
            "overrides": overrides or {},
            "run_dir": str(path),
            "partial": deadline.fired,
            "wall_s": round(self.clock() - start, 2),
        }
        if error is not None:
            entry["error"] = error
        if deadline.fired:
            entry["stop_reason"] = stop or "the stage's time box ended during training"
        if metrics is not None:
            entry["metrics"] = {k: v for k, v in metrics.items() if k not in ("data", "notes")}
        else:  # what the history holds
            entry["history_tail"] = RunDir(path).history()[-3:] if path.exists() else []
        entry["data"] = data_label(path)
        self.record["runs"].append(entry)
        self.save()
        return Run(path, metrics, deadline.fired, entry)

    def aggregate(self, runs: list[Run | None]) -> dict | None:
        """The results row of the complete runs among `runs` (partial ones are left out), written
        by the project's runner; None when there is none."""
        from mlrepro.runner import aggregate_runs

        done = [r for r in runs if r is not None and r.metrics is not None and not r.partial]
        if not done:
            self.note("no complete run: no results row")
            return None
        try:
            path, summary = aggregate_runs(
                [r.run_dir for r in done], results_dir=self.results_dir, force=self.force
            )
        except MlreproError as e:
            self.note(f"results row not written: {e}")
            return None
        heads = {
            k: {"mean": summary["metrics"][k]["mean"], "std": summary["metrics"][k]["std"]}
            for k in summary["headline"]
            if k in summary["metrics"]
        }
        row = {
            "file": str(path),
            "experiment": summary["experiment"],
            "preset": summary["preset"],
            "n": summary["n"],
            "seeds": summary["seeds"],
            "headline": heads,
            "partial": len(done) < len([r for r in runs if r is not None]),
        }
        self.record["results"].append(row)
        self.save()
        return summary


def data_label(run_dir: Path) -> str | None:
    """How a run's figures must be named: CIFAR-10 read from the JPEG copy is "CIFAR-10 (JPEG q75
    copy)", from its recorded provenance (config.json "data")."""
    try:
        data = json.loads((run_dir / "config.json").read_text()).get("data") or {}
    except (OSError, ValueError):
        return None
    names = sorted({str(p.get("dataset", key.split("/")[0])) for key, p in data.items()})
    jpeg = any(
        "jpeg" in json.dumps(p).lower() for key, p in data.items() if key.startswith("cifar10")
    )
    return ", ".join(JPEG_COPY if n == "cifar10" and jpeg else n for n in names) or None


def _mean(runs: list[Run | None], key: str) -> float | None:
    values = [
        r.metrics[key]
        for r in runs
        if r and r.metrics and not r.partial and isinstance(r.metrics.get(key), (int, float))
    ]
    return sum(values) / len(values) if values else None


# --- the stages ---


# fast-cifar10 at toy scale: 7 steps, with a warm-up of 30 % so that both 1cycle phases get ≥ 2.
CIFAR_TOY = {
    "model": "fast_cifar_small",
    "epochs": 1,
    "train_limit": 224,
    "test_limit": 100,
    "batch_size": 32,
    "warmup_frac": 0.3,
}
# A warm-up run compiles the network (train and eval graphs) and warms the GPU: one epoch of all the
# images (a shorter one leaves 1cycle's warm-up under 2 steps) and full test batches.
WARMUP = {"epochs": 1, "test_limit": 2000}


def stage_fast_cifar(sc: StageContext) -> None:
    """airbench94's comparison: accuracy and training time after a warm-up (compilation) run."""
    toy = sc.toy(CIFAR_TOY)
    warm = sc.run(
        "fast-cifar10", "gpu", seed=WARMUP_SEED, role="warm-up", overrides={**WARMUP, **toy}
    )
    runs, predict = [], None
    for seed in (0, 1, 2):
        run = sc.run("fast-cifar10", "gpu", seed=seed, overrides=toy or None, predict_s=predict)
        runs.append(run)
        if run is None:
            break
        predict = max(r.entry["wall_s"] for r in runs if r) * 1.15
    sc.aggregate(runs)
    acc, train_s = _mean(runs, "test_accuracy"), _mean(runs, "train_time_s")
    sc.record["comparison"] = {
        "data": next((r.entry["data"] for r in runs if r), None),
        "test_accuracy": acc,
        "train_time_s": train_s,
        "warm_up_train_time_s": (warm.metrics or {}).get("train_time_s") if warm else None,
        "time_to_94_s": train_s if acc is not None and acc >= 0.94 else None,
        "reached_94": acc is not None and acc >= 0.94,
        "airbench94": AIRBENCH94,
        "time_ratio_to_airbench94": train_s / AIRBENCH94["time_s"] if train_s else None,
        "timed": "fit only (after a warm-up run in the same process), including the per-epoch "
        "checkpoint writes; airbench also counts its whitening set-up and TTA pass",
    }
    sc.save()


def stage_fast_cifar_96(sc: StageContext) -> None:
    """≥ 96 % with airbench96's network and recipe, against the blog's 200-epoch WRN-28-10."""
    toy = sc.toy(CIFAR_TOY)
    sc.run("fast-cifar10", "gpu-96", seed=WARMUP_SEED, role="warm-up", overrides={**WARMUP, **toy})
    run = sc.run("fast-cifar10", "gpu-96", seed=0, overrides=toy or None)
    sc.aggregate([run])
    m = (run.metrics or {}) if run and not run.partial else {}
    acc = m.get("test_accuracy")
    sc.record["comparison"] = {
        "data": run.entry["data"] if run else None,
        "test_accuracy": acc,
        "train_time_s": m.get("train_time_s"),
        "wall_time_s": m.get("wall_time_s"),
        "beats_blog": acc is not None and acc > BLOG_WRN["accuracy"],
        "reached_96": acc is not None and acc >= 0.96,
        "under_a_minute": m.get("train_time_s") is not None and m["train_time_s"] < 60,
        "blog": BLOG_WRN,
        "airbench96": AIRBENCH96,
    }
    sc.save()


def _per_image_s(run: Run | None, images_per_epoch: int) -> float | None:
    """Seconds per training image, from a probe run's history (its epochs' time_s)."""
    if run is None or run.metrics is None:
        return None
    rows = [r for r in RunDir(run.run_dir).history() if "time_s" in r]
    return sum(r["time_s"] for r in rows) / (len(rows) * images_per_epoch) if rows else None


def _overhead_s(run: Run | None) -> float:
    """What a run of the same experiment costs besides its epochs (start, data, test, plots), from
    a probe run, with a margin for a larger test set."""
    if run is None:
        return 20.0
    epochs = sum(r.get("time_s", 0) for r in RunDir(run.run_dir).history())
    return 1.2 * max(run.entry["wall_s"] - epochs, 0) + 2


def stage_capsnet(sc: StageContext) -> None:
    """CapsNet: MNIST for the epochs that fit (paper 0.25 %, port 0.34 %), then MultiMNIST pairs."""
    toy = sc.toy({"train_limit": 100, "test_limit": 100, "batch_size": 25})
    probe_n = 100 if sc.smoke else 6000
    probe = sc.run(
        "capsnet-mnist",
        "gpu",
        role="probe",
        overrides={
            **toy,
            "epochs": 1,
            "train_limit": probe_n,
            "test_limit": 100 if sc.smoke else 1000,
        },
    )
    per_image, overhead = _per_image_s(probe, probe_n), _overhead_s(probe)
    n_train = 100 if sc.smoke else 60_000
    mnist_share = 0.6  # of what is left; the rest is MultiMNIST's
    epochs = 0
    if per_image is not None:
        avail = sc.left() * mnist_share - overhead
        epochs = int(min(1 if sc.smoke else 50, avail // (per_image * n_train)))
    run = None
    if epochs >= 1:
        run = sc.run(
            "capsnet-mnist",
            "gpu",
            overrides={**toy, "epochs": epochs},
            predict_s=epochs * per_image * n_train + overhead,
        )
        sc.aggregate([run])
    else:
        sc.skip(
            "capsnet-mnist --preset gpu",
            "not one epoch fits in the box"
            if per_image is not None
            else "the probe run did not finish",
        )
    m = (run.metrics or {}) if run and not run.partial else {}
    err = m.get("test_error_pct")
    sc.record["comparison"]["capsnet-mnist"] = {
        "epochs": m.get("epochs"),
        "seconds_per_epoch": per_image * n_train if per_image else None,
        "test_error_pct": err,
        "paper": CAPSNET["paper_error_pct"],
        "port": CAPSNET["port_error_pct"],
        "port_epochs": CAPSNET["port_epochs"],
        "train_time_s": m.get("train_time_s"),
    }
    sc.save()

    # MultiMNIST: measure pairs per second, then as many pairs as fit.
    mtoy = sc.toy({"test_limit": 100, "batch_size": 10, "warmup_frac": 0.3})
    probe_pairs = 100 if sc.smoke else 6000
    mprobe = sc.run(
        "capsnet-multimnist",
        "gpu",
        role="probe",
        overrides={
            **mtoy,
            "pairs_per_image": 1,
            "train_limit": probe_pairs,
            "test_limit": 100 if sc.smoke else 1000,
        },
    )
    per_pair, overhead = _per_image_s(mprobe, probe_pairs), _overhead_s(mprobe)
    digits = 100 if sc.smoke else 60_000  # training digits, each the base of pairs_per_image pairs
    fit = int((sc.left() - overhead) // per_pair) if per_pair is not None else 0
    # All digits, each as often as fits (the paper: 1,000 times); else fewer digits, once each.
    over = (
        {"pairs_per_image": min(fit // digits, 1 if sc.smoke else 1000), "train_limit": digits}
        if fit >= digits
        else {"pairs_per_image": 1, "train_limit": fit}
    )
    pairs = over["pairs_per_image"] * over["train_limit"]
    mrun = None
    if pairs >= (100 if sc.smoke else 1000):
        mrun = sc.run(
            "capsnet-multimnist",
            "gpu",
            overrides={**mtoy, **over},
            predict_s=pairs * per_pair + overhead,
        )
        sc.aggregate([mrun])
    else:
        sc.skip(
            "capsnet-multimnist --preset gpu",
            "too few pairs fit in the box"
            if per_pair is not None
            else "the probe run did not finish",
        )
    mm = (mrun.metrics or {}) if mrun and not mrun.partial else {}
    sc.record["comparison"]["capsnet-multimnist"] = {
        "train_pairs": mm.get("train_pairs"),
        "test_pairs": mm.get("test_pairs"),
        "test_error_pct": mm.get("test_error_pct"),
        "pairs_per_s": 1 / per_pair if per_pair else None,
        **MULTIMNIST,
    }
    sc.save()


# The superconvergence schedules tried, longest first: (piecewise epochs, 1cycle budgets). The
# first is the gpu preset's; shorter ones keep 1cycle's longest budget at ≤ ¼ of the baseline.
SC_LADDER = [(20, (3, 5)), (16, (2, 4)), (12, (2, 3)), (8, (1, 2))]


def stage_superconvergence(sc: StageContext) -> None:
    """Piecewise vs 1cycle (LR from the range test) on a paper-sized WRN: epochs and seconds."""
    preset = "gpu" if (Path(sc.data_dir) / "fashion-mnist").is_dir() else "gpu-mnist"
    if preset == "gpu-mnist":
        sc.note("no fashion-mnist/ in the data folder: the gpu-mnist preset (MNIST) runs instead")
    toy = sc.toy(
        {
            "depth": 10,
            "k": 1,
            "first_width": 8,
            "train_limit": 300,
            "val_size": 100,
            "test_limit": 100,
            "lr_find_steps": 10,
            "batch_size": 32,
        }
    )
    n_train, val = (200, 100) if sc.smoke else (55_000, 5000)
    probe = sc.run(
        "superconvergence",
        preset,
        role="probe",
        overrides={
            **toy,
            "train_limit": 300 if sc.smoke else 6000,
            "val_size": 100 if sc.smoke else 1000,
            "test_limit": 100 if sc.smoke else 1000,
            "baseline_epochs": 2,
            "onecycle_budgets": [1],
            "lr_find_steps": 10,
        },
    )
    per_image, overhead = _per_image_s(probe, 200 if sc.smoke else 5000), _overhead_s(probe)
    run = None
    if per_image is None:
        sc.skip(f"superconvergence --preset {preset}", "the probe run did not finish")
    else:
        ladder = [(2, (1,))] if sc.smoke else SC_LADDER
        steps = 10 if sc.smoke else 100  # the range test's batches
        for base, budgets in ladder:
            epochs = base + sum(budgets)
            images = epochs * (n_train + val) + steps * (32 if sc.smoke else 128)
            predict = per_image * images + overhead
            if predict <= sc.left() or (base, budgets) == ladder[-1]:
                over = (
                    {}
                    if (base, budgets) == SC_LADDER[0]
                    else {"baseline_epochs": base, "onecycle_budgets": list(budgets)}
                )
                run = sc.run(
                    "superconvergence", preset, overrides={**toy, **over} or None, predict_s=predict
                )
                break
        sc.aggregate([run])
    m = (run.metrics or {}) if run and not run.partial else {}
    sc.record["comparison"] = {
        "preset": preset,
        "dataset": "fashion-mnist" if preset == "gpu" else "mnist",
        **{
            k: m.get(k)
            for k in (
                "baseline_val_accuracy",
                "onecycle_val_accuracy",
                "baseline_epochs",
                "onecycle_epochs",
                "onecycle_budget",
                "epoch_ratio",
                "schedule_ratio",
                "onecycle_max_lr",
            )
        },
        **(seconds_to_target(run.run_dir, m) if m else {}),
        "target": "1cycle in ≤ ¼ of the piecewise epochs (Smith & Topin: ResNet-56, CIFAR-10)",
    }
    sc.save()


def seconds_to_target(run_dir: Path, metrics: dict) -> dict:
    """Training seconds each schedule took to reach the piecewise run's final validation accuracy,
    summed from the run's per-epoch history (`time_s` of every epoch up to the one that reached
    it)."""
    rows = RunDir(run_dir).history()
    base_n = metrics.get("baseline_epochs")
    piecewise = [r["time_s"] for r in rows if r.get("stage") == "piecewise"]
    out = {
        "piecewise_seconds_to_target": sum(piecewise[: int(base_n)]) if base_n else None,
        "piecewise_seconds_total": sum(piecewise) or None,
        "onecycle_seconds_to_target": None,
    }
    one_n, budget = metrics.get("onecycle_epochs"), metrics.get("onecycle_budget")
    if one_n and budget:
        arm = [r["time_s"] for r in rows if r.get("stage") == f"1cycle-{int(budget)}"]
        out["onecycle_seconds_to_target"] = sum(arm[: int(one_n)])
    if out["piecewise_seconds_to_target"] and out["onecycle_seconds_to_target"]:
        out["seconds_ratio"] = (
            out["onecycle_seconds_to_target"] / out["piecewise_seconds_to_target"]
        )
    return out


def gpu_test_files(root: Path = REPO) -> list[str]:
    """The test files that hold tests marked gpu (relative to the repository)."""
    return sorted(
        str(p.relative_to(root))
        for p in (root / "tests").rglob("test_*.py")
        if "pytest.mark.gpu" in p.read_text(encoding="utf-8")
    )


def junit_counts(path: Path) -> dict:
    """Counts and the not-passed tests of a pytest JUnit XML report."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {
        k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")
    }
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    cases = []
    for case in root.iter("testcase"):
        outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
        message = next((c.get("message", "") for c in case if c.tag == outcome), "")
        cases.append(
            {
                "test": f"{case.get('classname')}::{case.get('name')}",
                "outcome": outcome,
                "time_s": float(case.get("time", 0)),
                **({"message": message[:300]} if message else {}),
            }
        )
    return {**counts, "cases": cases}


def stage_gpu_tests(sc: StageContext) -> None:
    """`pytest -m gpu` on the files with GPU tests; they skip without CUDA (the smoke run)."""
    files = gpu_test_files()
    report = sc.out / "logs" / "pytest-gpu.xml"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "gpu",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
        *files,
    ]
    sc.record["command"] = "python -m pytest -m gpu " + " ".join(files)
    sc.save()
    # The GPU machine has mlrepro uninstalled: the tests import it from src/ too.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    try:
        done = subprocess.run(cmd, cwd=REPO, timeout=max(sc.left(), 1), check=False, env=env)
        sc.record["pytest_exit_code"] = done.returncode
    except subprocess.TimeoutExpired:
        sc.record["pytest_exit_code"] = None
        sc.note("pytest ran past the box and was stopped")
    if report.exists():
        sc.record["comparison"] = junit_counts(report)
    sc.save()
    if sc.record["pytest_exit_code"] not in (0, 5):  # 5: no test collected
        raise RuntimeError(f"pytest -m gpu exited with {sc.record['pytest_exit_code']}")


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    about: str
    box_s: float  # its box within the default budget (boxes scale with --budget-s)
    min_s: float  # below this, not worth starting
    toy_box_s: float  # --smoke: its box within the smoke budget (a third of it is its minimum)
    run: Callable[[StageContext], None]

    def limits(self, smoke: bool, budget_s: float) -> tuple[float, float]:
        """(box, minimum) in seconds for this budget."""
        if smoke:
            scale = budget_s / SMOKE_BUDGET_S
            return self.toy_box_s * scale, self.toy_box_s * scale / 3
        scale = budget_s / DEFAULT_BUDGET_S
        return self.box_s * scale, self.min_s * scale

    def results(self, data_dir: Path) -> list[tuple[str, str]]:
        """The (experiment, preset) results rows it writes."""
        sc_preset = "gpu" if (data_dir / "fashion-mnist").is_dir() else "gpu-mnist"
        return {
            "fast-cifar10": [("fast-cifar10", "gpu")],
            "fast-cifar10-96": [("fast-cifar10", "gpu-96")],
            "capsnet": [("capsnet-mnist", "gpu"), ("capsnet-multimnist", "gpu")],
            "superconvergence": [("superconvergence", sc_preset)],
        }.get(self.name, [])


# Boxes: on the GPU, 475 s of the 510 s budget (each stage process also takes a few seconds to
# start; the GPU tests include compiling a network and an ONNX export); at toy scale, what each
# took on a loaded 2-core CPU, with room.
STAGES = [
    Stage(
        "fast-cifar10",
        "fast-cifar10 --preset gpu, 3 seeds, beside airbench94 (3.83 s, A100)",
        100,
        40,
        35,
        stage_fast_cifar,
    ),
    Stage(
        "fast-cifar10-96",
        "fast-cifar10 --preset gpu-96 (airbench96's recipe), against the blog's 95.84 %",
        130,
        60,
        20,
        stage_fast_cifar_96,
    ),
    Stage(
        "capsnet",
        "CapsNet: MNIST for the epochs that fit, then MultiMNIST on the pairs that fit",
        100,
        40,
        65,
        stage_capsnet,
    ),
    Stage(
        "superconvergence",
        "piecewise vs 1cycle on WRN-16-4, epochs and seconds to the target",
        75,
        35,
        30,
        stage_superconvergence,
    ),
    Stage(
        "gpu-tests",
        "pytest -m gpu: bf16, channels_last, torch.compile, DDP/NCCL, ONNX",
        70,
        30,
        20,
        stage_gpu_tests,
    ),
]
STAGE_NAMES = [s.name for s in STAGES]


# --- before anything trains: the environment, the data, the results files ---


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_data(data_dir: Path) -> dict:
    """Checksums of the data a run reads (IDX files: of the decompressed content, as the loaders
    check them; the CIFAR-10 JPEG copy: of its archive). `ok` needs MNIST and CIFAR-10."""
    from mlrepro.data.fashion_mnist import FASHION_MNIST
    from mlrepro.data.mnist import MNIST

    checks = []
    for folder, table in (("mnist", MNIST.sha256), ("fashion-mnist", FASHION_MNIST.sha256)):
        for base, expected in table.items():
            path = next(
                (
                    p
                    for p in (data_dir / folder / f"{base}.gz", data_dir / folder / base)
                    if p.is_file()
                ),
                None,
            )
            got = None
            if path is not None:
                raw = path.read_bytes()
                got = _sha256(gzip.decompress(raw) if path.suffix == ".gz" else raw)
            checks.append(
                {
                    "dataset": folder,
                    "file": str(path or data_dir / folder / base),
                    "sha256": got,
                    "expected": expected,
                    "ok": got == expected,
                    "present": path is not None,
                }
            )
    archive = data_dir / "cifar-10-jpeg" / "cifar-10-jpeg.tar.gz"
    if archive.is_file():
        got = hashlib.sha256()
        with open(archive, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                got.update(chunk)
        checks.append(
            {
                "dataset": "cifar-10-jpeg",
                "file": str(archive),
                "sha256": got.hexdigest(),
                "expected": CIFAR_JPEG_SHA256,
                "ok": got.hexdigest() == CIFAR_JPEG_SHA256,
                "present": True,
                "copy": JPEG_COPY,
            }
        )
    else:
        checks.append(
            {
                "dataset": "cifar-10-jpeg",
                "file": str(archive),
                "present": False,
                "ok": False,
                "expected": CIFAR_JPEG_SHA256,
            }
        )
    needed = [c for c in checks if c["dataset"] in ("mnist", "cifar-10-jpeg")]
    optional_bad = [
        c for c in checks if c["dataset"] == "fashion-mnist" and c["present"] and not c["ok"]
    ]
    return {
        "dir": str(data_dir),
        "ok": all(c["ok"] for c in needed) and not optional_bad,
        "fashion_mnist": all(c["ok"] for c in checks if c["dataset"] == "fashion-mnist"),
        "checks": checks,
    }


def default_data_dir() -> Path | None:
    """$MLREPRO_DATA, else the checkout's .device-data/, else ../shared/data."""
    env = os.environ.get("MLREPRO_DATA")
    candidates = [REPO / ".device-data", REPO.parent / "shared" / "data"]
    for p in ([Path(env)] if env else []) + candidates:
        if p.is_dir():
            return p.absolute()
    return None


def source_digest() -> str:
    """sha256 over this checkout's package and this script: which code the evidence is of, also
    where no git history travels."""
    h = hashlib.sha256()
    for p in sorted([*(REPO / "src" / "mlrepro").rglob("*.py"), Path(__file__).resolve()]):
        h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def environment(device: str) -> dict:
    """What the evidence was measured on: the runner's hardware record, plus CUDA details, the
    torch floor CI tests and the code's identity."""
    info = hardware_info(torch.device(device))
    info.update(
        {
            "mlrepro": __version__,
            "cudnn": torch.backends.cudnn.version(),
            "source_sha256": source_digest(),
        }
    )
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(
            {
                "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                "gpu_capability": f"{props.major}.{props.minor}",
            }
        )
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            info["nvidia_driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                check=True,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
    floor = torch_floor()
    if floor:
        have = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
        info["torch_floor"] = ".".join(map(str, floor))
        info["torch_below_floor"] = have < floor
    return info


def torch_floor() -> tuple[int, ...] | None:
    """The torch release CI tests (constraints.txt's pin), e.g. (2, 13)."""
    with contextlib.suppress(OSError):
        for line in (REPO / "constraints.txt").read_text().splitlines():
            if line.startswith("torch=="):
                return tuple(int(x) for x in line[7:].split("+")[0].split(".")[:2])
    return None


def existing_results(stages: list[Stage], results_dir: Path, data_dir: Path) -> list[Path]:
    from mlrepro.runner import results_path

    return [
        p
        for s in stages
        for exp, preset in s.results(data_dir)
        if (p := results_path(results_dir, exp, preset)).exists()
    ]


# --- the stage processes ---


def _pump(stream, log: Path, prefix: str, echo: bool) -> None:
    with open(log, "a", encoding="utf-8") as f:
        for line in stream:
            f.write(line)
            f.flush()
            if echo:
                sys.stderr.write(f"{prefix}{line}")
                sys.stderr.flush()


def run_stage_process(
    stage: Stage, box_s: float, args, out: Path, results_dir: Path, data_dir: Path, device: str
) -> dict:
    """Run one stage in a child process with a deadline `box_s` from now; kill it GRACE_S later.
    Returns its record (what it saved, plus how the process ended)."""
    deadline = time.time() + box_s
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--stage-process",
        stage.name,
        "--deadline",
        repr(deadline),
        "--out",
        str(out),
        "--results-dir",
        str(results_dir),
        "--data-dir",
        str(data_dir),
        "--device",
        device,
        *(["--smoke"] if args.smoke else []),
        *(["--force"] if args.force else []),
    ]
    log = out / "logs" / f"{stage.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
        env=env,
    )
    pump = threading.Thread(
        target=_pump, daemon=True, args=(proc.stdout, log, f"[{stage.name}] ", not args.quiet)
    )
    pump.start()
    killed = False
    try:
        proc.wait(timeout=box_s + (GRACE_S / 2 if args.smoke else GRACE_S))
    except subprocess.TimeoutExpired:
        killed = True
        _kill(proc)
    except KeyboardInterrupt:
        _kill(proc)
        raise
    pump.join(timeout=5)
    path = out / "stages" / f"{stage.name}.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record = {
            "name": stage.name,
            "runs": [],
            "skipped": [],
            "results": [],
            "comparison": {},
            "notes": ["the stage wrote no record"],
        }
    record.update(
        {
            "about": stage.about,
            "box_s": round(box_s, 1),
            "elapsed_s": round(time.time() - start, 1),
            "exit_code": proc.returncode,
            "killed": killed,
            "log": str(log),
        }
    )
    record["partial"] = (
        killed
        or any(r.get("partial") for r in record["runs"])
        or any(r.get("partial") for r in record["results"])
        or bool(record["skipped"])
    )
    failed = killed or proc.returncode != 0 or any("error" in r for r in record["runs"])
    record["status"] = (
        "failed"
        if failed and not record["runs"]
        else ("partial" if record["partial"] or failed else "done")
    )
    return record


def _kill(proc: subprocess.Popen) -> None:
    """End a stage process and everything it started (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def stage_process_main(args) -> int:
    """Inside a stage's process: run it and keep its record."""
    stage = next(s for s in STAGES if s.name == args.stage_process)
    if args.smoke:  # toy runs: one thread is as fast, and it spares a shared CPU
        torch.set_num_threads(1)
    # The runs record the command that re-runs this stage alone (the runner records sys.argv).
    sys.argv = [SCRIPT, "--stages", stage.name, *(["--smoke"] if args.smoke else [])]
    sc = StageContext(
        stage.name,
        out=Path(args.out),
        results_dir=Path(args.results_dir),
        data_dir=args.data_dir,
        device=args.device,
        deadline=args.deadline,
        smoke=args.smoke,
        force=args.force,
    )
    sc.save()
    try:
        stage.run(sc)
    except Exception as e:  # noqa: BLE001 - recorded; the parent marks the stage failed
        sc.record["error"] = f"{type(e).__name__}: {e}"
        sc.record["traceback"] = traceback.format_exc()[-4000:]
        sc.save()
        traceback.print_exc()
        return 1
    return 0


# --- the evidence file, the bundle, the summary ---


def write_evidence(evidence: dict, out: Path, export: Path | None) -> None:
    atomic_write_json(out / "evidence.json", evidence)
    if export is not None:
        export.mkdir(parents=True, exist_ok=True)
        atomic_write_json(export / "evidence.json", evidence)
        bundle(out, export / "gpu-evidence.tar.gz")


def bundle(out: Path, target: Path, max_file_bytes: int = 8 << 20) -> None:
    """OUT as a .tar.gz without checkpoints (nor files over max_file_bytes), written atomically."""
    tmp = target.with_name(f".{target.name}.tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for p in sorted(out.rglob("*")):
            if p in (tmp, target) or not p.is_file() or p.name.startswith("."):
                continue  # the bundle itself (--export OUT), temporary files
            if p.suffix != ".pt" and p.stat().st_size <= max_file_bytes:
                tar.add(p, arcname=str(Path(out.name) / p.relative_to(out)))
    os.replace(tmp, target)


def headline_text(stage: dict) -> str:
    """One short line of what a stage found."""
    c = stage.get("comparison") or {}
    name = stage["name"]
    if name == "fast-cifar10" and c.get("test_accuracy") is not None:
        return (
            f"{c['test_accuracy']:.2%} in {c['train_time_s']:.1f} s "
            f"(airbench94: 94.01 % in 3.83 s, A100)"
        )
    if name == "fast-cifar10-96" and c.get("test_accuracy") is not None:
        return f"{c['test_accuracy']:.2%} in {c['train_time_s']:.1f} s (blog: 95.84 %, 200 epochs)"
    if name == "capsnet":
        m, mm = c.get("capsnet-mnist") or {}, c.get("capsnet-multimnist") or {}
        parts = []
        if m.get("test_error_pct") is not None:
            parts.append(
                f"MNIST {m['test_error_pct']:.2f} % after {m['epochs']} epochs (paper 0.25 %)"
            )
        if mm.get("test_error_pct") is not None:
            parts.append(f"MultiMNIST {mm['test_error_pct']:.1f} % on {mm['train_pairs']:,} pairs")
        return "; ".join(parts)
    if name == "superconvergence" and c.get("baseline_epochs") is not None:
        ratio = c.get("epoch_ratio")
        return (f"epoch ratio {ratio:.2f}" if ratio is not None else "1cycle missed the target") + (
            f" ({c['dataset']})"
        )
    if name == "gpu-tests" and "tests" in c:
        return f"{c['passed']} passed, {c['failures'] + c['errors']} failed, {c['skipped']} skipped"
    return "; ".join(s["why"] for s in stage.get("skipped", [])[:1]) or stage.get("error", "")


def print_summary(evidence: dict) -> None:
    where = "smoke, CPU" if evidence["smoke"] else evidence["environment"].get("device_name", "")
    print(
        f"\nGPU evidence ({where}), {evidence['elapsed_s']:.0f} s of a "
        f"{evidence['budget_s']:.0f} s budget: {evidence['out']}/evidence.json"
    )
    print(f"{'stage':<18} {'status':<8} {'box':>6} {'took':>6}  found")
    for s in evidence["stages"]:
        box = f"{s['box_s']:.0f}s" if s.get("box_s") is not None else "-"
        took = f"{s['elapsed_s']:.0f}s" if s.get("elapsed_s") is not None else "-"
        print(f"{s['name']:<18} {s['status']:<8} {box:>6} {took:>6}  {headline_text(s)}")


# --- the command ---


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=SCRIPT,
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    p.add_argument(
        "--budget-s",
        type=float,
        help=f"total wall time (default {DEFAULT_BUDGET_S:.0f}; --smoke: "
        f"{SMOKE_BUDGET_S:.0f}); the boxes scale with it",
    )
    p.add_argument("--smoke", action="store_true", help="every stage at toy scale on the CPU")
    p.add_argument(
        "--stages", help=f"comma-separated, in this order: {','.join(STAGE_NAMES)} (default: all)"
    )
    p.add_argument(
        "--out",
        help="folder for evidence.json, runs/, logs/ (default: "
        "runs/gpu-evidence/TIMESTAMP; --smoke: a new temporary folder)",
    )
    p.add_argument(
        "--results-dir",
        help="where the results rows go (default: OUT/results; `results` for the repository's)",
    )
    p.add_argument("--force", action="store_true", help="replace existing results files")
    p.add_argument(
        "--data-dir", help="datasets (default: $MLREPRO_DATA, .device-data/, ../shared/data)"
    )
    p.add_argument(
        "--export",
        help="also write evidence.json and gpu-evidence.tar.gz here after "
        "every stage (a folder that is copied back from the GPU machine)",
    )
    p.add_argument("--quiet", action="store_true", help="only the summary, not the stages' output")
    # Internal: one stage inside its own process.
    p.add_argument("--stage-process", help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    p.add_argument("--device", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def select_stages(spec: str | None) -> list[Stage]:
    """The stages named (comma-separated), in their order of value; ValueError if one is unknown."""
    if not spec:
        return list(STAGES)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in STAGE_NAMES]
    if unknown:
        raise ValueError(f"unknown stage {unknown[0]!r}; valid: {', '.join(STAGE_NAMES)}")
    return [s for s in STAGES if s.name in names]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.stage_process:
        return stage_process_main(args)
    err = f"{SCRIPT}: error:"
    try:
        stages = select_stages(args.stages)
    except ValueError as e:
        print(f"{err} --stages: {e}", file=sys.stderr)
        return 2
    budget = (
        args.budget_s
        if args.budget_s is not None
        else (SMOKE_BUDGET_S if args.smoke else DEFAULT_BUDGET_S)
    )
    if budget < 0 or math.isnan(budget):
        print(f"{err} --budget-s must be >= 0, got {args.budget_s}", file=sys.stderr)
        return 2
    if args.smoke:
        device = "cpu"
    elif torch.cuda.is_available():
        device = "cuda"
    else:
        print(
            f"{err} no CUDA device here (torch {torch.__version__}); --smoke runs every stage at "
            "toy scale on the CPU",
            file=sys.stderr,
        )
        return 2
    out = (
        Path(args.out)
        if args.out
        else (
            Path(tempfile.mkdtemp(prefix="gpu-evidence-smoke-"))
            if args.smoke
            else REPO / "runs" / "gpu-evidence" / time.strftime("%Y%m%d-%H%M%S")
        )
    )
    out = out.absolute()
    results_dir = Path(args.results_dir).absolute() if args.results_dir else out / "results"
    if args.smoke and results_dir.resolve() == (REPO / "results").resolve():
        print(
            f"{err} --smoke never writes the repository's results/; name another --results-dir",
            file=sys.stderr,
        )
        return 2
    data_dir = Path(args.data_dir).absolute() if args.data_dir else default_data_dir()
    if data_dir is None or not data_dir.is_dir():
        looked = args.data_dir or "none of $MLREPRO_DATA, .device-data/, ../shared/data"
        print(
            f"{err} no data folder ({looked}); see the docstring's 'Data on the GPU machine'",
            file=sys.stderr,
        )
        return 2
    taken = [] if args.force else existing_results(stages, results_dir, data_dir)
    if taken:
        print(
            f"{err} {', '.join(map(str, taken))} exist{'s' if len(taken) == 1 else ''}: results "
            "are evidence; pass --force to replace them, or name another --results-dir",
            file=sys.stderr,
        )
        return 2
    export = Path(args.export).absolute() if args.export else None
    out.mkdir(parents=True, exist_ok=True)

    start = time.time()
    evidence: dict[str, Any] = {
        "what": "GPU evidence (benchmarks/gpu_evidence.py)",
        "smoke": args.smoke,
        "command": " ".join([SCRIPT, *(argv if argv is not None else sys.argv[1:])]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "budget_s": budget,
        "elapsed_s": 0.0,
        "finished": None,
        "out": str(out),
        "results_dir": str(results_dir),
        "device": device,
        "environment": environment(device),
        "data": check_data(data_dir),
        "stages": [{"name": s.name, "about": s.about, "status": "pending"} for s in stages],
    }
    write_evidence(evidence, out, export)
    if not evidence["data"]["ok"]:
        bad = [
            c
            for c in evidence["data"]["checks"]
            if not c["ok"] and (c["present"] or c["dataset"] != "fashion-mnist")
        ]
        why = "data check failed: " + "; ".join(
            f"{c['file']} {'missing' if not c['present'] else 'has sha256 ' + str(c['sha256'])}"
            for c in bad[:3]
        )
        for s in evidence["stages"]:
            s.update(status="skipped", skipped=[{"what": s["name"], "why": why}])
        evidence.update(
            elapsed_s=round(time.time() - start, 1), finished=time.strftime("%Y-%m-%dT%H:%M:%S%z")
        )
        write_evidence(evidence, out, export)
        print(f"{err} {why}", file=sys.stderr)
        return 2

    try:
        for i, stage in enumerate(stages):
            left = budget - (time.time() - start)
            later = sum(s.limits(args.smoke, budget)[1] for s in stages[i + 1 :])
            box, why = plan_box(*stage.limits(args.smoke, budget), left, later)
            if box is None:
                record = {
                    "name": stage.name,
                    "about": stage.about,
                    "status": "skipped",
                    "skipped": [{"what": stage.name, "why": why}],
                    "runs": [],
                    "results": [],
                }
            else:
                print(
                    f"== {stage.name}: {stage.about} (box {box:.0f} s)", file=sys.stderr, flush=True
                )
                record = run_stage_process(stage, box, args, out, results_dir, data_dir, device)
            evidence["stages"][i] = record
            evidence["elapsed_s"] = round(time.time() - start, 1)
            write_evidence(evidence, out, export)
    except KeyboardInterrupt:
        evidence["interrupted"] = True
        evidence["elapsed_s"] = round(time.time() - start, 1)
        write_evidence(evidence, out, export)
        print(f"{err} interrupted; what ran is in {out}/evidence.json", file=sys.stderr)
        return 130
    evidence.update(
        elapsed_s=round(time.time() - start, 1), finished=time.strftime("%Y-%m-%dT%H:%M:%S%z")
    )
    write_evidence(evidence, out, export)
    print_summary(evidence)
    failed = [s["name"] for s in evidence["stages"] if s["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
