"""Run `mlrepro` command lines, each in its own process, and measure each one's peak memory.

    python cli_harness.py CASES.json RESULTS.json

Importing torch and the experiments costs seconds of CPU, so this process does it once and then
forks a child per case: the child sets the case's environment and working folder, sends its
stdout and stderr to files, runs `mlrepro.cli.main(argv)` and exits with its status. The parent
reads each child's exit status and peak resident memory (`wait4`'s ru_maxrss, in KiB). A child
starts out sharing the parent's memory, so compare a case with a baseline case measured the same
way, not with zero.

A case is {"id", "argv", "cwd", "env": {name: value or null to unset}, "timeout_s",
"cifar_checksums": null or {"batch_rows": int, "md5": {name: md5}}}; the last replaces
mlrepro.data.cifar10.OFFICIAL in the child (a hostile file that passes the published checksums,
to reach the parsers behind them). A result is {"id", "code", "stdout", "stderr", "maxrss_kib",
"timed_out"}.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch

import mlrepro.runner  # noqa: F401  (imported once here, not in every child)
from mlrepro.cli import main
from mlrepro.data import cifar10
from mlrepro.experiments import get_experiment

torch.set_num_threads(1)
for name in ("mnist-mlp", "fast-cifar10"):
    get_experiment(name)


def child(case: dict, out_path: str, err_path: str) -> None:
    code = 99
    try:
        os.chdir(case["cwd"])
        for key, value in case.get("env", {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for fd, path in ((1, out_path), (2, err_path)):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        if case.get("cifar_checksums") and hasattr(cifar10, "Checksums"):
            cifar10.OFFICIAL = cifar10.Checksums(**case["cifar_checksums"])
        try:
            code = main(case["argv"])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    except BaseException:  # noqa: BLE001 (report anything, then exit like a crashed CLI)
        traceback.print_exc()
        code = 99
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run(case: dict, folder: str) -> dict:
    out_path = os.path.join(folder, f"{case['id']}.stdout")
    err_path = os.path.join(folder, f"{case['id']}.stderr")
    pid = os.fork()
    if pid == 0:
        child(case, out_path, err_path)
    deadline, timed_out = time.monotonic() + case.get("timeout_s", 60), False
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            timed_out = True
            _, status, usage = os.wait4(pid, 0)
            break
        time.sleep(0.01)
    with open(out_path, errors="replace") as f:
        stdout = f.read()
    with open(err_path, errors="replace") as f:
        stderr = f.read()
    return {
        "id": case["id"],
        "code": os.waitstatus_to_exitcode(status),
        "stdout": stdout,
        "stderr": stderr,
        "maxrss_kib": usage.ru_maxrss,
        "timed_out": timed_out,
    }


if __name__ == "__main__":
    cases_path, results_path = sys.argv[1:3]
    with open(cases_path) as f:
        cases = json.load(f)
    folder = os.path.dirname(os.path.abspath(results_path))
    results = [run(case, folder) for case in cases]
    with open(results_path, "w") as f:
        json.dump(results, f, indent=1)
