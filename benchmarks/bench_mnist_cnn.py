"""mnist-cnn: the default preset against the fast preset, trained side by side in one process.

Every run goes through the project's runner (`mlrepro.runner.run_experiment`) on the full MNIST
(55,000 training images, 5,000 validation, 10,000 test), so each leaves a run folder under --out,
and all runs share this process's threads. The runs alternate between the contenders (round r runs
seed r of each), after an untimed warm-up of the quick preset in fp32 and bf16 (data cache, oneDNN
kernels), so changes in machine load hit all alike. For each run it prints test accuracy, the
training time (`train_time_s`, the fit alone), the wall time (`wall_time_s`, data to metrics), the
process's CPU time and the 1-minute load average before and after; then the mean of each
contender and the ratio line.

`--variants` names further contenders (the steps from the default to the fast preset, VARIANTS
below), to measure what each change buys in the same run.

Run:   python benchmarks/bench_mnist_cnn.py --data-dir ../shared/data --threads 2
       python benchmarks/bench_mnist_cnn.py --data-dir ../shared/data --threads 2 \\
           --variants default,default-bf16,fast-b128,fast-fp32,fast --default-seeds 0 --seeds 0
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from mlrepro.engine.runtime import hardware_info
from mlrepro.runner import run_experiment

# name -> (preset, overrides, what it is); each differs from the one before it in one thing.
VARIANTS: dict[str, tuple[str | None, dict, str]] = {
    "default": (None, {}, "default preset: fp32, batch 128, 3 epochs"),
    "default-bf16": (None, {"precision": "bf16"}, "default + bf16 autocast"),
    "fast-b128": ("fast", {"batch_size": 128, "lr": 3e-3}, "fast preset at the default's batch"),
    "fast-fp32": ("fast", {"precision": "fp32"}, "fast preset in fp32"),
    "fast": ("fast", {}, "fast preset"),
}


def load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def timed_run(variant: str, seed: int, args) -> dict:
    preset, overrides, _ = VARIANTS[variant]
    before, cpu = load(), time.process_time()
    run_dir, m = run_experiment(
        "mnist-cnn",
        preset=preset,
        overrides=overrides,
        seed=seed,
        out=args.out,
        data_dir=args.data_dir,
        verbose=False,
        run_path=Path(args.out) / f"{variant}-s{seed}",
        full_data_only=True,
    )
    row = {
        "variant": variant,
        "seed": seed,
        "acc": m["test_accuracy"],
        "train_s": m["train_time_s"],
        "wall_s": m["wall_time_s"],
        "cpu_s": time.process_time() - cpu,
        "load": (before, load()),
        "run_dir": str(run_dir.path),
    }
    print(
        f"  {variant:<13} seed {seed}: test {100 * row['acc']:.2f} %   "
        f"train {row['train_s']:6.1f} s   wall {row['wall_s']:6.1f} s   "
        f"cpu {row['cpu_s']:6.1f} s   "
        f"load {before:.2f} -> {row['load'][1]:.2f}   {row['run_dir']}",
        flush=True,
    )
    return row


def parse_seeds(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data-dir",
        default=os.environ.get("MLREPRO_DATA"),
        help="folder holding mnist/ (default: $MLREPRO_DATA)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads for every run")
    p.add_argument("--seeds", default="0,1,2", help="seeds of every contender but the default")
    p.add_argument("--default-seeds", default="0", help="seeds of the default preset")
    p.add_argument("--variants", default="default,fast", help=f"contenders: {', '.join(VARIANTS)}")
    p.add_argument(
        "--out",
        default="runs/bench-mnist-cnn/" + time.strftime("%Y%m%d-%H%M%S"),
        help="folder for the run folders",
    )
    p.add_argument("--no-warmup", action="store_true")
    args = p.parse_args()
    if not args.data_dir or not (Path(args.data_dir) / "mnist").is_dir():
        print("skipped: no full MNIST (give --data-dir DIR with DIR/mnist, or set MLREPRO_DATA)")
        return
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variant {unknown[0]!r}; valid: {', '.join(VARIANTS)}")
    torch.set_num_threads(args.threads)
    seeds = {v: parse_seeds(args.default_seeds if v == "default" else args.seeds) for v in names}

    print(
        f"cpu: {hardware_info()['processor']} ({os.cpu_count()} logical cores, "
        f"{torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads, OMP_WAIT_POLICY "
        f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}), data {args.data_dir}, load {load():.2f}",
        flush=True,
    )
    if not args.no_warmup:
        for precision in ("fp32", "bf16"):
            run_experiment(
                "mnist-cnn",
                preset="quick",
                overrides={"precision": precision},
                out=args.out,
                data_dir=args.data_dir,
                verbose=False,
                run_path=Path(args.out) / f"warmup-{precision}",
            )
    rows: list[dict] = []
    for r in range(max(len(s) for s in seeds.values())):
        for v in names:
            if r < len(seeds[v]):
                rows.append(timed_run(v, seeds[v][r], args))

    print("mean over seeds (accuracy; train, wall and CPU time):")
    mean = {}
    for v in names:
        got = [row for row in rows if row["variant"] == v]
        mean[v] = {
            k: statistics.fmean(row[k] for row in got)
            for k in ("acc", "train_s", "wall_s", "cpu_s")
        }
        accs = ", ".join(f"{100 * row['acc']:.2f}" for row in got)
        print(
            f"  {v:<13} {100 * mean[v]['acc']:.2f} % ({accs}; {len(got)} seeds)   "
            f"train {mean[v]['train_s']:6.1f} s   wall {mean[v]['wall_s']:6.1f} s   "
            f"cpu {mean[v]['cpu_s']:6.1f} s   {VARIANTS[v][2]}"
        )
    loads = [x for row in rows for x in row["load"]]
    print(f"load average (1 min) over the runs: {min(loads):.2f}–{max(loads):.2f}")
    if "default" in mean:
        base = mean["default"]
        for v in names:
            if v != "default":
                print(
                    f"{v} / default time: {mean[v]['wall_s'] / base['wall_s']:.2f}× "
                    f"(wall; train {mean[v]['train_s'] / base['train_s']:.2f}×, "
                    f"cpu {mean[v]['cpu_s'] / base['cpu_s']:.2f}×)"
                )


if __name__ == "__main__":
    main()
