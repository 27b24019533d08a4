"""The dqn-vizdoom scenario sweep: learned vs random per scenario and seed, and the learning curves.

Reads every finished dqn-vizdoom run folder under the given folders (sweep seeds `sweep-*/s*/`
and single runs alike: a folder with config.json, history.jsonl and metrics.json), groups them by
scenario and prints a markdown table: per seed the final test score and the random baseline on the
same episode seeds (mean ± standard error), and their difference in standard errors,
z = (test − random) / √(se_test² + se_random²). A scenario passes when z ≥ 3 on every seed. The
figure has one panel per scenario: the test score after each epoch against environment steps,
one line per seed, the random baselines dashed.

    python benchmarks/dqn_vizdoom_sweep.py runs [more folders] [--plot sweep.png] [--min-z 3]
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path


def find_runs(roots: list[str]) -> dict[str, list[dict]]:
    """{scenario: [run, ...]} for every finished dqn-vizdoom run under `roots`, seeds in order."""
    runs = defaultdict(list)
    for root in roots:
        for history in sorted(Path(root).rglob("history.jsonl")):
            folder = history.parent
            if not (folder / "metrics.json").exists() or not (folder / "config.json").exists():
                continue
            config = json.loads((folder / "config.json").read_text())
            if config.get("experiment") != "dqn-vizdoom" or config["config"].get("random_policy"):
                continue
            rows = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
            metrics = json.loads((folder / "metrics.json").read_text())
            cfg = config["config"]
            runs[Path(cfg["scenario"]).stem].append(
                {
                    "folder": folder,
                    "seed": config["seed"],
                    "config": cfg,
                    "rows": rows,
                    "metrics": metrics,
                    "steps": cfg["epochs"] * cfg["steps_per_epoch"],
                }
            )
    return {k: sorted(v, key=lambda r: r["seed"]) for k, v in sorted(runs.items())}


def z_score(m: dict) -> float | None:
    se = math.hypot(m.get("test_score_se") or 0.0, m.get("random_score_se") or 0.0)
    if m.get("random_score") is None or se == 0:
        return None
    return (m["test_score"] - m["random_score"]) / se


def table(runs: dict[str, list[dict]], min_z: float) -> str:
    lines = [
        "| scenario | seed | steps | train time | test score ± s.e. | random ± s.e. | z | passes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scenario, seeds in runs.items():
        for r in seeds:
            m = r["metrics"]
            z = z_score(m)
            lines.append(
                f"| {scenario} | {r['seed']} | {r['steps']:,} | {m['train_time_s'] / 60:.1f} min | "
                f"{m['test_score']:.2f} ± {m.get('test_score_se') or 0:.2f} | "
                + (
                    f"{m['random_score']:.2f} ± {m.get('random_score_se') or 0:.2f} | "
                    if m.get("random_score") is not None
                    else "– | "
                )
                + (
                    f"{z:.1f} | {'yes' if z >= min_z else '**no**'} |"
                    if z is not None
                    else "– | – |"
                )
            )
    return "\n".join(lines)


def plot(runs: dict[str, list[dict]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(runs)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (scenario, seeds) in zip(axes.ravel(), runs.items()):
        for i, r in enumerate(seeds):
            color = f"C{i}"
            per_epoch = r["config"]["steps_per_epoch"]
            xs = [row["epoch"] * per_epoch for row in r["rows"]]
            ys = [row["test_score_mean"] for row in r["rows"]]
            ax.plot(xs, ys, "o-", color=color, ms=3, label=f"seed {r['seed']}")
            if r["metrics"].get("random_score") is not None:
                ax.axhline(r["metrics"]["random_score"], color=color, ls="--", lw=1)
        ax.set_title(scenario, fontsize=10)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("test score")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7, title="dashed: random", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+", help="folders to search for dqn-vizdoom runs (e.g. runs)")
    p.add_argument("--plot", default="dqn_vizdoom_sweep.png", help="the learning-curve figure")
    p.add_argument("--min-z", type=float, default=3.0, help="standard errors a pass needs")
    args = p.parse_args(argv)
    runs = find_runs(args.folders)
    if not runs:
        raise SystemExit(f"no finished dqn-vizdoom runs under {', '.join(args.folders)}")
    print(table(runs, args.min_z))
    passed = [
        s
        for s, seeds in runs.items()
        if all((z_score(r["metrics"]) or -math.inf) >= args.min_z for r in seeds)
    ]
    print(
        f"\nz ≥ {args.min_z:g} on every seed: {', '.join(passed) or 'none'} "
        f"({len(passed)} of {len(runs)} scenarios)"
    )
    plot(runs, args.plot)
    print(f"figure: {args.plot}")


if __name__ == "__main__":
    main()
