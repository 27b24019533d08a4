"""What tracking costs a run: the same quick run with and without `--track`, side by side.

Each repeat runs the command a user types, `mlrepro run EXP --quick`, as a fresh process, once
without and once with `--track tensorboard,mlflow` (ABBA order, so drifting machine load hits both
alike), after one warm-up of each (the data cache, the store's tables). A tracked run writes its
TensorBoard events (every step, every epoch, hparams, figures) and its MLflow run (params, every
epoch, the end-of-run metrics, tags, artifacts) into a SQLite store; it imports MLflow and opens the
store in its writer process, beside the run. The ratio of the medians is the line to read; the
median paired difference says the same in seconds, and the CPU seconds (the run's processes, user +
system) say what tracking costs where no core is idle.

Run:   python benchmarks/bench_tracking.py                       (mnist-mlp --quick, 7 pairs)
       python benchmarks/bench_tracking.py --repeats 11 --track mlflow --threads 1
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(args, out: Path, track: str | None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the run and its writer process)."""
    cmd = [
        sys.executable,
        "-m",
        "mlrepro",
        "run",
        args.experiment,
        "--preset",
        args.preset,
        "--out",
        str(out / "runs"),
        "-q",
    ]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if track:
        cmd += ["--track", track]
        if "mlflow" in track:
            cmd += ["--mlflow-uri", f"sqlite:///{out / 'mlflow.db'}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiment", default="mnist-mlp")
    p.add_argument("--preset", default="quick")
    p.add_argument("--track", default="tensorboard,mlflow")
    p.add_argument("--repeats", type=int, default=7, help="pairs of runs (default 7)")
    p.add_argument(
        "--threads", type=int, default=None, help="--threads of each run (default: torch's)"
    )
    args = p.parse_args()
    data = os.environ.get("MLREPRO_DATA") or "the bundled samples"
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
        out = Path(tmp)
        one_run(args, out, None)  # warm-up: the data cache, the store's tables
        one_run(args, out, args.track)
        plain, tracked, cpu = [], [], {None: [], args.track: []}
        for i in range(args.repeats):
            for track in [None, args.track] if i % 2 == 0 else [args.track, None]:
                wall, used = one_run(args, out, track)
                (tracked if track else plain).append(wall)
                cpu[track].append(used)
            print(
                f"pair {i + 1}: none {plain[-1]:.2f} s, {args.track} {tracked[-1]:.2f} s "
                f"(CPU {cpu[None][-1]:.2f} s, {cpu[args.track][-1]:.2f} s)",
                flush=True,
            )
    a, b = statistics.median(plain), statistics.median(tracked)
    diff = statistics.median(t - q for t, q in zip(tracked, plain))
    ca, cb = statistics.median(cpu[None]), statistics.median(cpu[args.track])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"`mlrepro run {args.experiment} --preset {args.preset}` on {data}, {args.repeats} "
        f"pairs, {os.cpu_count()} CPUs, load average {load:.2f} at the end"
    )
    print(
        f"ratio tracked/none: {b / a:.3f} (median {b:.2f} s vs {a:.2f} s; median paired "
        f"difference {diff * 1000:+.0f} ms = {diff / a * 100:+.1f} %)"
    )
    print(f"CPU seconds tracked/none: {cb / ca:.3f} (median {cb:.2f} s vs {ca:.2f} s)")


if __name__ == "__main__":
    main()
