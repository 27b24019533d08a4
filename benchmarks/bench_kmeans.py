"""k-means: mlrepro.classic.KMeans vs scikit-learn KMeans(algorithm="lloyd") on the same data.

Both get the same initial centres and run exactly `--iters` Lloyd iterations (tol=0, n_init=1), so
the work is identical; the script prints the wall-time ratio and the inertia ratio from the same run.
Timings alternate between the two libraries so that machine load hits both alike; the median of
`--repeats` runs is reported, after one untimed warm-up run each.

Run:   python benchmarks/bench_kmeans.py                      (1,000,000 x 16 float32, k = 64)
       python benchmarks/bench_kmeans.py --n 200000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch


def make_blobs(n: int, d: int, k: int, seed: int, dtype) -> np.ndarray:
    """k Gaussian blobs: centres ~ N(0, 3^2 I), unit-variance noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, (k, d))
    return (centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))).astype(dtype)


def environment() -> list[str]:
    import sklearn

    lines = [
        f"cpu: {_cpu_name()} ({os.cpu_count()} logical cores), {platform.system()} {platform.release()}",
        (
            f"torch {torch.__version__} (intra-op threads {torch.get_num_threads()}), "
            f"scikit-learn {sklearn.__version__}, numpy {np.__version__}"
        ),
    ]
    blas_env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "MKL_"))}
    lines.append(f"BLAS/OpenMP env: {blas_env or 'none set'}")
    try:
        from threadpoolctl import threadpool_info

        pools = [f"{p['internal_api']}:{p['num_threads']}" for p in threadpool_info()]
        lines.append(f"sklearn thread pools: {', '.join(pools)}")
    except ImportError:
        pass
    return lines


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="samples")
    parser.add_argument("--d", type=int, default=16, help="features")
    parser.add_argument("--k", type=int, default=64, help="clusters")
    parser.add_argument("--iters", type=int, default=20, help="Lloyd iterations (max_iter, tol=0)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-size", type=int, default=None, help="ours: rows per block")
    args = parser.parse_args(argv)

    from sklearn.cluster import KMeans as SkKMeans

    from mlrepro.classic import KMeans

    X = make_blobs(args.n, args.d, args.k, args.seed, args.dtype)
    rng = np.random.default_rng(args.seed + 1)
    init = X[rng.choice(args.n, args.k, replace=False)]
    common = {"init": init, "n_init": 1, "max_iter": args.iters, "tol": 0.0}

    def ours():
        return KMeans(args.k, chunk_size=args.chunk_size, **common).fit(X)

    def theirs():
        return SkKMeans(args.k, algorithm="lloyd", **common).fit(X)

    print(
        f"k-means, {args.n:,} x {args.d} {args.dtype}, k = {args.k}, {args.iters} iterations, "
        f"same initial centres"
    )
    for line in environment():
        print("  " + line)
    print(f"  load average before: {os.getloadavg()[0]:.2f}")

    runs = {"mlrepro": (ours, []), "sklearn": (theirs, [])}
    models = {name: fn() for name, (fn, _) in runs.items()}  # warm-up, untimed
    for r in range(args.repeats):
        order = list(runs) if r % 2 == 0 else list(reversed(runs))
        for name in order:
            fn, times = runs[name]
            start = time.perf_counter()
            models[name] = fn()
            times.append(time.perf_counter() - start)
    ours_t = statistics.median(runs["mlrepro"][1])
    theirs_t = statistics.median(runs["sklearn"][1])
    ours_m, theirs_m = models["mlrepro"], models["sklearn"]

    for name, (_, times) in runs.items():
        print(
            f"  {name:8s} median {statistics.median(times):.3f} s  runs "
            + " ".join(f"{t:.3f}" for t in times)
            + f"  (n_iter_ = {models[name].n_iter_})"
        )
    print(f"  load average after: {os.getloadavg()[0]:.2f}")
    agree = float(np.mean(ours_m.labels_ == theirs_m.labels_))
    print(
        f"  inertia: mlrepro {ours_m.inertia_:.8g}, sklearn {theirs_m.inertia_:.8g}; "
        f"labels identical for {100 * agree:.3f} % of points"
    )
    print(
        f"RATIO time sklearn/mlrepro = {theirs_t / ours_t:.2f}x (>1: mlrepro faster); "
        f"inertia mlrepro/sklearn = {ours_m.inertia_ / theirs_m.inertia_:.6f}"
    )


if __name__ == "__main__":
    main()
