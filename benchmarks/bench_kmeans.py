"""k-means: mlrepro.classic.KMeans vs FAISS and scikit-learn (Lloyd), same centres and threads.

The peers are `faiss.Kmeans` and scikit-learn `KMeans(algorithm="lloyd")`.

All three get the same data, the same initial centres and the same thread count, and run at most
`--iters` Lloyd iterations: FAISS with `max_points_per_centroid` = N (no subsampling), scikit-learn
and mlrepro with tol=0, n_init=1. A run ends with the labels of the returned centres (mlrepro and
scikit-learn compute them themselves; for FAISS, the timed run includes one `IndexFlatL2` search
with its final centroids, and its train-only time is printed too). Every inertia is recomputed
here the same way, exactly (float64 differences), from each library's centres and labels.

The default initial centres are k-means++ (scikit-learn's `kmeans_plusplus`) on a sample of 10 k
rows; then no cluster empties and all three libraries follow the same path, so their inertias
agree to rounding. With `--init random` (k distinct rows), empty clusters occur at large k, and
FAISS refills them by splitting large clusters while scikit-learn and mlrepro move them to the
farthest points: the paths, and the inertias, then differ by up to about 0.5 %.

Timings alternate between the libraries so that machine load hits all alike; the median of
`--repeats` runs is reported, after `--warmup` untimed runs each. The load average is printed
before and after.

Run:   python benchmarks/bench_kmeans.py                              (1,000,000 x 16, k = 64)
       python benchmarks/bench_kmeans.py --d 64 --k 1024 --repeats 3 --warmup 0
       python benchmarks/bench_kmeans.py --n 200000 --repeats 3       (a shorter check)
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


def initial_centres(X: np.ndarray, k: int, how: str, seed: int) -> np.ndarray:
    """k-means++ on a sample of 10 k rows (scikit-learn's), or k distinct random rows."""
    rng = np.random.default_rng(seed + 1)
    if how == "random":
        return X[rng.choice(len(X), k, replace=False)].copy()
    from sklearn.cluster import kmeans_plusplus

    sample = X[rng.choice(len(X), min(len(X), 10 * k), replace=False)]
    return kmeans_plusplus(sample, k, random_state=seed)[0].astype(X.dtype)


def inertia(X: np.ndarray, centres: np.ndarray, labels: np.ndarray, rows: int = 1 << 16) -> float:
    """Sum of squared distances to the assigned centres, from float64 differences."""
    total = 0.0
    c64 = centres.astype(np.float64)
    for s in range(0, len(X), rows):
        diff = X[s : s + rows].astype(np.float64) - c64[labels[s : s + rows]]
        total += float(np.einsum("ij,ij->", diff, diff))
    return total


def environment(threads: int) -> list[str]:
    import sklearn

    lines = [
        f"cpu: {_cpu_name()} ({os.cpu_count()} logical cores), "
        f"{platform.system()} {platform.release()}",
        (
            f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}"
            + _faiss_version()
        ),
        f"threads: {threads} for each library (torch intra-op, OpenMP, BLAS)",
    ]
    blas_env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "MKL_"))}
    lines.append(f"BLAS/OpenMP env: {blas_env or 'none set'}")
    return lines


def _faiss_version() -> str:
    try:
        import faiss
    except ImportError:
        return ", faiss not installed (pip install faiss-cpu)"
    return f", faiss {faiss.__version__} ({faiss.get_compile_options().strip()})"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def contenders(X, init, iters: int, threads: int, chunk_size) -> dict:
    """name -> function running one fit and returning (centres, labels, n_iter, extra)."""
    from sklearn.cluster import KMeans as SkKMeans

    from mlrepro.classic import KMeans

    k = len(init)
    common = {"init": init, "n_init": 1, "max_iter": iters, "tol": 0.0}

    def ours():
        m = KMeans(k, chunk_size=chunk_size, **common).fit(X)
        return m.cluster_centers_, m.labels_, m.n_iter_, {}

    def sklearn():
        m = SkKMeans(k, algorithm="lloyd", **common).fit(X)
        return m.cluster_centers_, m.labels_, m.n_iter_, {}

    runs = {"mlrepro": ours, "sklearn": sklearn}
    try:
        import faiss
    except ImportError:
        return runs
    faiss.omp_set_num_threads(threads)

    def faiss_kmeans():
        start = time.perf_counter()
        km = faiss.Kmeans(X.shape[1], k, niter=iters, max_points_per_centroid=len(X), seed=1)
        km.train(X, init_centroids=init)
        train_s = time.perf_counter() - start
        index = faiss.IndexFlatL2(X.shape[1])
        index.add(km.centroids)
        labels = index.search(X, 1)[1][:, 0]
        splits = sum(s["nsplit"] for s in km.iteration_stats)
        return km.centroids, labels, len(km.iteration_stats), {"train_s": train_s, "splits": splits}

    runs["faiss"] = faiss_kmeans
    return runs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="samples")
    parser.add_argument("--d", type=int, default=16, help="features")
    parser.add_argument("--k", type=int, default=64, help="clusters")
    parser.add_argument("--iters", type=int, default=20, help="Lloyd iterations (max_iter, tol=0)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each first")
    parser.add_argument("--init", choices=["k-means++", "random"], default="k-means++")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="for every library")
    parser.add_argument("--dtype", choices=["float32"], default="float32", help="FAISS: float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-size", type=int, default=None, help="mlrepro: rows per block")
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    X = make_blobs(args.n, args.d, args.k, args.seed, args.dtype)
    init = initial_centres(X, args.k, args.init, args.seed)
    print(
        f"k-means, {args.n:,} x {args.d} {args.dtype}, k = {args.k}, at most {args.iters} "
        f"iterations, same initial centres ({args.init})"
    )
    for line in environment(args.threads):
        print("  " + line)
    print(f"  load average before: {os.getloadavg()[0]:.2f}")

    with threadpool_limits(args.threads):
        runs = contenders(X, init, args.iters, args.threads, args.chunk_size)
        times = {name: [] for name in runs}
        results = {}
        for _ in range(args.warmup):
            for name, fn in runs.items():
                results[name] = fn()
        for r in range(args.repeats):
            names = list(runs) if r % 2 == 0 else list(reversed(runs))
            for name in names:
                start = time.perf_counter()
                results[name] = runs[name]()
                times[name].append(time.perf_counter() - start)
                if "train_s" in results[name][3]:
                    times.setdefault("faiss train only", []).append(results[name][3]["train_s"])
    load_after = os.getloadavg()[0]

    med = {name: statistics.median(t) for name, t in times.items()}
    inert = {name: inertia(X, c, lab) for name, (c, lab, _, _) in results.items()}
    for name, t in times.items():
        base = name.split()[0]
        n_iter = results[base][2]
        extra = f", inertia {inert[base]:.9g}" if base == name else ""
        if "splits" in results[base][3] and base == name:
            extra += f", clusters split {results[base][3]['splits']}"
        print(
            f"  {name:16s} median {med[name]:.3f} s  runs "
            + " ".join(f"{x:.3f}" for x in t)
            + f"  (iterations {n_iter}{extra})"
        )
    print(f"  load average after: {load_after:.2f}")
    ours_labels = results["mlrepro"][1]
    for peer in [p for p in ("sklearn", "faiss") if p in results]:
        agree = float(np.mean(ours_labels == results[peer][1]))
        print(f"  labels identical to {peer} for {100 * agree:.3f} % of points")
    load = f"(threads {args.threads}, load {load_after:.2f})"
    for peer in [p for p in ("faiss", "sklearn") if p in results]:
        print(
            f"RATIO time {peer}/mlrepro = {med[peer] / med['mlrepro']:.2f}x (>1: mlrepro faster); "
            f"inertia mlrepro/{peer} = {inert['mlrepro'] / inert[peer]:.6f} {load}"
        )
    if "faiss train only" in med:
        print(
            f"RATIO time faiss-train-only/mlrepro = "
            f"{med['faiss train only'] / med['mlrepro']:.2f}x (FAISS without the final "
            f"assignment) {load}"
        )


if __name__ == "__main__":
    main()
