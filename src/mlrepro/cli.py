"""The command line: `mlrepro list | run EXP [--key value ...] | aggregate RUN_DIR... | demo |
cache | lr-find EXP | schedule-plot | linreg CSV | kmeans CSV | play RUN_DIR | export RUN_DIR |
attack RUN_DIR | search EXP | report`.

Every error a user can reach ends as one line, `mlrepro: error: …`, and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from .errors import ConfigError, MlreproError, RunInterrupted


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not seeds:
        raise argparse.ArgumentTypeError("expected at least one seed")
    if min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct integers >= 0, got {text!r}")
    return seeds


def _count(low: int):
    """An argparse type: an integer >= low."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse's errors as this CLI's one line and exit status 2 (argparse prints usage too)."""

    def error(self, message: str):
        print(f"mlrepro: error: {self.prog.removeprefix('mlrepro ')}: {message}", file=sys.stderr)
        raise SystemExit(2)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs", help="root folder for run folders (default: runs)")
    p.add_argument(
        "--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps"
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="dataset folder (default: $MLREPRO_DATA; with neither, the bundled samples serve)",
    )
    p.add_argument("--threads", type=_count(1), default=None, help="torch CPU threads")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _add_experiment_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="the seconds-long preset")
    p.add_argument("--preset", default=None, help="a named preset of the experiment")
    p.add_argument("--seed", type=_count(0), default=0)
    p.add_argument(
        "-h",
        "--help",
        action="store_true",
        help="this help, and the experiment's own options when EXP is given",
    )


def _add_tracking(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--track",
        default=None,
        metavar="tensorboard,mlflow",
        help="watch the run(s) in TensorBoard (RUN/tensorboard/) and/or MLflow; needs "
        "pip install 'mlrepro[track]'",
    )
    p.add_argument(
        "--mlflow-uri",
        default=None,
        metavar="URI",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
        "sqlite:///OUT/mlflow.db next to the run folders)",
    )


def _tracker(args):
    """The trackers --track names, checked (extra installed, store reachable) before any run; a
    dry run checks the names only."""
    from .tracking import make_tracker, parse_kinds

    if args.dry_run if hasattr(args, "dry_run") else False:
        parse_kinds(args.track)
        return None
    return make_tracker(args.track, mlflow_uri=args.mlflow_uri, out=args.out)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog="mlrepro",
        allow_abbrev=False,
        description="Reproduce classic ML results with one command.",
    )
    parser.add_argument("--version", action="version", version=f"mlrepro {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="list experiments (with -v: their presets and options)")
    p.add_argument("-v", "--verbose", action="store_true")

    p = sub.add_parser(
        "run",
        allow_abbrev=False,
        add_help=False,
        help="run an experiment",
        usage="mlrepro run EXP [options] [--FIELD VALUE ...]",
        description="Run EXP; any other --field value overrides a field of its Config "
        "(`mlrepro run EXP --help` lists them).",
    )
    p.add_argument("experiment", nargs="?", help="experiment name (see `mlrepro list`)")
    _add_experiment_options(p)
    p.add_argument(
        "--seeds",
        type=_seeds,
        default=None,
        help="comma-separated seeds: a sweep folder with every run and summary.json "
        "(mean ± std); run the same command again to continue an interrupted sweep",
    )
    p.add_argument(
        "--results-dir",
        default=None,
        help=(
            "with --seeds: also write the summary to DIR/EXP[.TAG][.PRESET].json, TAG the "
            "ViZDoom scenario of dqn-vizdoom (full data only)"
        ),
    )
    p.add_argument("--force", action="store_true", help="replace an existing results file")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a killed run")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check the options, the extras and the output folders, then stop",
    )
    p.add_argument(
        "--keep-checkpoints",
        choices=["last", "all"],
        default="last",
        help="last: one per run, slimmed to the model once it finished (default); "
        "all: also every epoch's full checkpoint",
    )
    _add_common(p)
    _add_tracking(p)

    p = sub.add_parser(
        "aggregate",
        help="mean ± std of finished runs (e.g. seeds run side by side)",
        description="Write RESULTS_DIR/EXP[.TAG][.PRESET].json, as `run --seeds --results-dir` "
        "does, from finished run folders of one experiment, preset and config.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--results-dir", default="results", help="where the summary goes")
    p.add_argument("--force", action="store_true", help="replace an existing results file")

    p = sub.add_parser("demo", help="a short tour: the quick preset of every experiment")
    _add_common(p)

    p = sub.add_parser("cache", help="show (or clear) the dataset cache")
    p.add_argument("--clear", action="store_true", help="delete the cached decoded datasets")

    p = sub.add_parser("linreg", help="fit a linear regression to a CSV file")
    p.add_argument("csv")
    p.add_argument("--target", required=True, help="the column to predict")
    p.add_argument(
        "--columns", default=None, help="comma-separated feature columns (default: all others)"
    )
    p.add_argument("--solver", choices=["gd", "closed_form"], default="gd")
    p.add_argument("--lr", type=_number, default=0.1)
    p.add_argument("--max-iter", type=_count(1), default=100_000)
    p.add_argument("--test-frac", type=_number, default=0.3)
    p.add_argument("--seed", type=_count(0), default=0)

    p = sub.add_parser("kmeans", help="cluster the rows of a CSV file")
    p.add_argument("csv")
    p.add_argument("-k", "--n-clusters", type=_count(1), required=True)
    p.add_argument("--columns", default=None, help="comma-separated columns (default: all)")
    p.add_argument("--n-init", type=_count(1), default=10)
    p.add_argument("--max-iter", type=_count(1), default=300)
    p.add_argument("--metric", choices=["euclidean", "cosine"], default="euclidean")
    p.add_argument("--seed", type=_count(0), default=0)
    p.add_argument(
        "--labels-out", default=None, help="write one cluster label per row to this file"
    )

    p = sub.add_parser(
        "lr-find",
        allow_abbrev=False,
        add_help=False,
        help="LR range test on an experiment's model",
        usage="mlrepro lr-find EXP [options] [--FIELD VALUE ...]",
        description="Sweep the LR exponentially; other --field value set Config fields.",
    )
    p.add_argument("experiment", nargs="?")
    p.add_argument("--start", type=_number, default=1e-7, help="first LR (default 1e-7)")
    p.add_argument("--end", type=_number, default=10.0, help="last LR (default 10)")
    p.add_argument("--steps", type=_count(5), default=100, help="number of batches (default 100)")
    p.add_argument(
        "--suggestion", default="valley", choices=["valley", "steepest", "minimum/10", "blog"]
    )
    _add_experiment_options(p)
    _add_common(p)

    p = sub.add_parser("schedule-plot", help="draw a schedule's LR and momentum per iteration")
    p.add_argument(
        "schedules",
        nargs="+",
        help="names: constant, onecycle, cosine-restarts, "
        "cosine-restarts-decay, warmup-cosine, piecewise",
    )
    p.add_argument("--epochs", type=_count(1), default=10)
    p.add_argument("--steps-per-epoch", type=_count(1), default=100)
    p.add_argument("--lr", type=_number, default=0.1, help="peak LR")
    p.add_argument("--t-mult", type=_number, default=2.0)
    p.add_argument("--cycle-epochs", type=_number, default=1.0)
    p.add_argument("--restart-decay", type=_number, default=0.5)
    p.add_argument("--milestones", default="60,120,160", help="piecewise milestones, in epochs")
    p.add_argument("--three-phase", action="store_true")
    p.add_argument("--output", "-o", default="schedules.png")

    p = sub.add_parser(
        "search",
        allow_abbrev=False,
        add_help=False,
        help="hyperparameter search (Optuna)",
        usage="mlrepro search EXP --param NAME=KIND:... [options] [--FIELD VALUE ...]",
        description="Search Config fields; other --field value fix fields for every trial.",
    )
    p.add_argument("experiment", nargs="?")
    p.add_argument(
        "--param",
        action="append",
        default=None,
        metavar="NAME=KIND:...",
        help="lr=log:1e-4:1, dropout=float:0:0.5, width=int:16:128, opt=choice:sgd,adam",
    )
    p.add_argument("--trials", type=_count(1), default=20)
    p.add_argument("--sampler", choices=["random", "grid", "tpe"], default="tpe")
    p.add_argument("--storage", default=None, help="e.g. sqlite:///study.db (shared, resumable)")
    p.add_argument("--study-name", default=None)
    p.add_argument(
        "--workers",
        type=_count(1),
        default=1,
        help="processes working on the study (default storage with N > 1: "
        "sqlite:///OUT/search/STUDY/study.db); with --threads, threads per process",
    )
    _add_tracking(p)
    _add_experiment_options(p)
    _add_common(p)

    p = sub.add_parser(
        "play", help="replay a trained agent (greedy) from a run folder; optional GIF"
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--episodes", type=_count(1), default=10)
    p.add_argument("--gif", default=None, help="write every tic of the episodes to this GIF")
    p.add_argument(
        "--seed", type=_count(0), default=0, help="episode i is played with seed SEED + i"
    )
    p.add_argument("--fps", type=_number, default=35.0, help="GIF speed (35 = Doom's real time)")

    p = sub.add_parser("export", help="export a run's trained model (ONNX)")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("--output", "-o", default=None, help="default: RUN_DIR/model.onnx")
    p.add_argument(
        "--opset", type=_count(7), default=None, help="ONNX opset (default: the exporter's)"
    )
    p.add_argument("--data-dir", default=None, help="dataset folder for the check against PyTorch")

    p = sub.add_parser(
        "attack", help="attack a run's trained model (FGSM, BIM, PGD) on its test set"
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--attack", choices=["fgsm", "bim", "pgd", "pgd-l2"], default="fgsm")
    p.add_argument(
        "--eps", type=_number, default=0.1, help="ε: L∞ (or L2) radius, pixels in [0, 1]"
    )
    p.add_argument(
        "--steps", type=_count(1), default=None, help="iterations (pgd: 10, bim: Kurakin's rule)"
    )
    p.add_argument(
        "--alpha", type=_number, default=None, help="step size (pgd: 2.5·ε/steps, bim: 1/255)"
    )
    p.add_argument("--no-random-start", action="store_true", help="pgd: start at the input")
    p.add_argument(
        "--target",
        type=int,
        default=None,
        metavar="CLASS",
        help="targeted: push every input to CLASS",
    )
    p.add_argument("--limit", type=_count(0), default=0, help="first N test images (default: all)")
    p.add_argument("--batch-size", type=_count(1), default=1000)
    p.add_argument("--seed", type=_count(0), default=0, help="seeds PGD's random start")
    _add_common(p)

    p = sub.add_parser("report", help="regenerate the README's results table from results/")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--readme", default="README.md")
    return parser


# --- list and help ---


def _wrap(text: str, indent: int, width: int = 100) -> str:
    import textwrap

    return textwrap.fill(text, width, initial_indent=" " * indent, subsequent_indent=" " * indent)


def experiment_help(name: str) -> str:
    """What `mlrepro run EXP --help` adds: the claim, presets and every option with its source."""
    from .config import config_help
    from .experiments import get_experiment

    exp = get_experiment(name)
    lines = [f"{exp.name}: {exp.summary}", _wrap(f"claim: {exp.claim}", 2), "", "presets:"]
    for key, preset in exp.presets.items():
        took = f" ({preset.time})" if preset.time else ""
        lines.append(_wrap(f"{key:<12} {preset.about}{took}", 2))
    if exp.requires:
        lines += ["", f"needs: {', '.join(exp.requires)} (pip install 'mlrepro[{exp.extra}]')"]
    lines += ["", f"options of {exp.name} (--option value; [source] help):"]
    for o in config_help(exp.config):
        default = ",".join(map(str, o.default)) if isinstance(o.default, tuple) else o.default
        rng = f", {o.range}" if o.range else ""
        lines.append(f"  {o.option} ({o.type}{rng}; default {default})")
        lines.append(_wrap(f"[{o.source}] {o.help}", 6))
    return "\n".join(lines)


def cmd_list(args) -> int:
    from .experiments import EXPERIMENTS, get_experiment

    for name in EXPERIMENTS:
        exp = get_experiment(name)
        print(f"{name:<22} {exp.summary}")
        if args.verbose:
            print(f"{'':<22} presets: {', '.join(exp.presets)}")
    if args.verbose:
        print("\nEach experiment's options: mlrepro run EXP --help")
    return 0


def _help(parser: argparse.ArgumentParser, command: str, experiment: str | None) -> int:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    print(sub.choices[command].format_help())
    if experiment:
        print(experiment_help(experiment))
    return 0


# --- runs ---


def _setup(args) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise ConfigError(f"--data-dir: {args.data_dir} is not a folder")


def _preset(args) -> str | None:
    if args.quick and args.preset:
        raise ConfigError("give either --quick or --preset, not both")
    return "quick" if args.quick else args.preset


def cmd_run(args, extra: list[str], argv: list[str]) -> int:
    from .config import parse_overrides
    from .writer_process import start_early

    if not args.dry_run:  # MLflow's writer starts up beside the import of torch, not after it
        start_early(args.track, args.mlflow_uri, args.out)
    from .runner import run_experiment, run_seeds

    _setup(args)
    preset = _preset(args)
    overrides = parse_overrides(extra)
    if args.results_dir is not None and not args.seeds:
        raise ConfigError(
            "--results-dir goes with --seeds (a results file summarises several seeds)"
        )
    common = {
        "out": args.out,
        "device": args.device,
        "data_dir": args.data_dir,
        "verbose": not args.quiet,
        "keep_checkpoints": args.keep_checkpoints,
    }
    common["track"] = _tracker(args)  # a missing extra or a bad store: one line, before any run
    if args.dry_run:
        return _dry_run(args, preset, overrides)
    if args.resume:
        if overrides or preset or args.seeds:
            raise ConfigError(
                "--resume continues a run as it was configured; drop the other options"
            )
        run_dir, metrics = run_experiment(args.experiment, resume=args.resume, argv=argv, **common)
    elif args.seeds:
        path, summary = run_seeds(
            args.experiment,
            args.seeds,
            results_dir=args.results_dir,
            force=args.force,
            preset=preset,
            overrides=overrides,
            argv=argv,
            **common,
        )
        if summary:  # empty in torchrun's other processes: rank 0 writes and prints it
            _print_summary(path, summary)
        return 0
    else:
        run_dir, metrics = run_experiment(
            args.experiment, preset=preset, overrides=overrides, seed=args.seed, argv=argv, **common
        )
    _print_metrics(metrics)
    print(run_dir.path)
    return 0


def _dry_run(args, preset: str | None, overrides: dict) -> int:
    """Everything a run checks before it trains, without making anything."""
    from .experiments import get_experiment
    from .runner import (
        check_results_target,
        check_writable,
        device_option,
        open_run_dir,
        results_path,
        task_tag,
    )

    if args.resume:
        open_run_dir(args.resume, "--resume")
        print(f"would resume {args.resume}")
        return 0
    if not args.experiment:
        raise ConfigError("run: name an experiment (see `mlrepro list`) or give --resume RUN_DIR")
    exp = get_experiment(args.experiment)
    exp.check_requirements()
    cfg = exp.make_config(preset, overrides)
    device_option(args.device)
    check_writable(args.out, "--out")
    if args.results_dir is not None:
        import dataclasses

        check_results_target(
            results_path(args.results_dir, exp.name, preset, task_tag(exp, cfg)),
            {"preset": preset or "default", "config": dataclasses.asdict(cfg), "seeds": args.seeds},
            args.force,
        )
    print(
        f"would run {exp.name} (preset {preset or 'default'}) with seeds "
        f"{','.join(map(str, args.seeds or [args.seed]))} into {args.out}"
    )
    return 0


def _print_summary(path: Path, summary: dict) -> None:
    for key in summary["headline"]:
        m = summary["metrics"][key]
        if m["mean"] is None:
            print(f"{key}: none of the {summary['n']} runs reported it")
        else:
            print(f"{key}: {m['mean']:.6g} ± {m['std']:.2g} (n={summary['n'] - m['missing']})")
    print(f"summary: {path}")
    for d in summary["run_dirs"]:
        print(d)


def cmd_aggregate(args, argv: list[str]) -> int:
    from .runner import aggregate_runs

    path, summary = aggregate_runs(
        args.run_dirs, results_dir=args.results_dir, force=args.force, argv=argv
    )
    _print_summary(path, summary)
    return 0


def _print_metrics(metrics: dict) -> None:
    for k, v in metrics.items():
        if isinstance(v, float):
            print(f"{k}: {v:.6g}")
        elif isinstance(v, (int, str)):
            print(f"{k}: {v}")
    for note in metrics.get("notes", []):
        print(f"note: {note}", file=sys.stderr)


def _du(path: Path) -> int:
    """Bytes of the files under path."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _table(rows: list[list[str]]) -> list[str]:
    """Rows as aligned columns (the last column is left ragged)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def cmd_demo(args, argv: list[str]) -> int:
    import time
    import warnings

    from .data import SampleDataWarning, cache_dir
    from .demo_page import write_index
    from .experiments import all_experiments
    from .runner import check_writable, named_data_dir, run_experiment

    _setup(args)
    out = Path(args.out) / "demo" if args.out == "runs" else Path(args.out)
    check_writable(out, "--out")
    named, by = named_data_dir(args.data_dir)
    experiments = all_experiments()
    print(
        f"mlrepro demo: the quick preset of {len(experiments)} experiments, seconds each. Quick "
        "presets are smoke tests on a few hundred images: their numbers show the code runs, not "
        "the claims (the table at the end names each claim and the command for it)."
    )
    print(
        f"data: {named} (from {by})"
        if named
        else "data: the small samples bundled with mlrepro (no --data-dir or MLREPRO_DATA named)"
    )
    rows, skipped = [], []
    start = time.perf_counter()
    for i, exp in enumerate(experiments, 1):
        head = f"[{i:>2}/{len(experiments)}] {exp.name:<20}"
        missing = exp.missing_requirements()
        if missing:
            skipped.append(exp.name)
            print(
                f"{head} skipped: needs {', '.join(missing)} (pip install 'mlrepro[{exp.extra}]')"
            )
            continue
        print(head, end=" ", flush=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SampleDataWarning)  # said once, above
            run_dir, metrics = run_experiment(
                exp.name,
                preset="quick",
                out=out,
                device=args.device,
                data_dir=args.data_dir,
                verbose=False,
                argv=["run", exp.name, "--quick"],
            )
        key = exp.headline[0]
        shown = f"{key} {metrics[key]:.3g}" if isinstance(metrics.get(key), float) else f"{key} n/a"
        rows.append((exp, run_dir.path, metrics, shown))
        line = f"{head} {shown:<30} {metrics['wall_time_s']:5.1f} s   quick: "
        # the preset's description gets what is left of a 120-column line
        print(line[len(head) + 1 :] + _short(exp.presets["quick"].about, max(20, 120 - len(line))))
    took = time.perf_counter() - start

    print("\nWhat each quick run stands for, and the full run that reproduces the claim:")
    table = [["experiment", "quick result", "claim", "reproduce with"]]
    table += [[exp.name, shown, _short(exp.claim, 48), exp.command] for exp, _, _, shown in rows]
    print("\n".join("  " + line for line in _table(table)))
    page = write_index(
        out / "index.html",
        [(exp, path, metrics) for exp, path, metrics, _ in rows],
        data=f"{named} (from {by})" if named else "the bundled samples",
    )
    cache = cache_dir() / "datasets"
    checkpoints = sum(
        p.stat().st_size for _, path, _, _ in rows for p in path.glob("checkpoint*.pt")
    )
    print(
        f"\n{len(rows)} runs in {took:.0f} s"
        + (f" ({len(skipped)} skipped)" if skipped else "")
        + f"; disk: {_mb(_du(out))} in {out} ({_mb(checkpoints)} of it checkpoints); dataset cache "
        f"{_mb(_du(cache))} in {cache} (`mlrepro cache --clear` empties it)"
    )
    print(f"open {page} for every run's headline and figures")
    return 0


def cmd_cache(args) -> int:
    import json
    import shutil

    from .data import cache_dir

    folder = cache_dir() / "datasets"
    entries = []
    for meta in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        stem = meta.name[: -len(".json")]
        size = sum(p.stat().st_size for p in folder.glob(stem + ".*") if p.is_file())
        try:
            info = json.loads(meta.read_text())
        except (OSError, ValueError):
            info = {}
        entries.append(
            (
                info.get("name", stem),
                info.get("split", "?"),
                info.get("n", "?"),
                size,
                info.get("source", "?"),
            )
        )
    total = _du(folder)
    if args.clear:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"cleared {folder} ({_mb(total)})")
        return 0
    if not entries:
        print(f"{folder}: empty")
        return 0
    rows = [["dataset", "split", "images", "size", "decoded from"]]
    rows += [[name, split, str(n), _mb(size), str(src)] for name, split, n, size, src in entries]
    print("\n".join(_table(rows)))
    print(
        f"{len(entries)} entries, {_mb(total)} in {folder} (mlrepro cache --clear deletes them; "
        "they are rebuilt from the data files when needed)"
    )
    return 0


# --- classic estimators on a CSV ---


def _columns(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def _check_output_file(path: str, option: str, kind: str) -> None:
    from .runner import check_replaceable, check_writable

    if Path(path).is_dir():
        raise ConfigError(f"{option}: {path} is a folder; expected a file name")
    check_writable(Path(path).absolute().parent, option)
    check_replaceable(path, option, kind)


def cmd_linreg(args) -> int:
    import numpy as np

    from .classic import LinearRegressionGD, read_csv

    if not 0 <= args.test_frac < 1:
        raise ConfigError(f"--test-frac must be in [0, 1), got {args.test_frac}")
    if not args.lr > 0:
        raise ConfigError(f"--lr must be > 0, got {args.lr}")
    X, y, names = read_csv(args.csv, target=args.target, columns=_columns(args.columns))
    order = np.random.default_rng(args.seed).permutation(len(X))
    n_test = round(args.test_frac * len(X))
    test, train = order[:n_test], order[n_test:]
    if len(train) < 2 or n_test == 1:
        raise ConfigError(
            f"{args.csv}: {len(X)} rows leave {len(train)} to fit and {n_test} to test; "
            "R² needs at least 2 rows in each (or --test-frac 0)"
        )
    model = LinearRegressionGD(args.lr, max_iter=args.max_iter, solver=args.solver).fit(
        X[train], y[train]
    )
    print(
        f"{args.target} = {float(np.ravel(model.intercept_)[0]):.6g}"
        + "".join(f" + {c:.6g}·{n}" for c, n in zip(np.ravel(model.coef_), names))
    )
    print(f"train R²: {model.score(X[train], y[train]):.6f}  ({len(train)} rows)")
    if n_test:
        print(f"test R²:  {model.score(X[test], y[test]):.6f}  ({n_test} rows)")
    print(f"solver: {args.solver}, iterations: {model.n_iter_}")
    return 0


def cmd_kmeans(args) -> int:
    import numpy as np

    from .classic import KMeans, read_csv
    from .io import atomic_write_text

    if args.labels_out:
        _check_output_file(args.labels_out, "--labels-out", "labels")
    X, _, names = read_csv(args.csv, columns=_columns(args.columns))
    km = KMeans(
        args.n_clusters,
        n_init=args.n_init,
        max_iter=args.max_iter,
        metric=args.metric,
        random_state=args.seed,
    ).fit(X)
    counts = np.bincount(km.labels_, minlength=args.n_clusters)
    print(f"inertia: {km.inertia_:.6g}  iterations: {km.n_iter_}")
    print("cluster  size  centre (" + ", ".join(names) + ")")
    for i, (c, n) in enumerate(zip(km.cluster_centers_, counts)):
        print(f"{i:>7} {n:>5}  " + ", ".join(f"{v:.4g}" for v in c))
    if args.labels_out:
        atomic_write_text(args.labels_out, "".join(f"{v}\n" for v in km.labels_))
        print(f"labels: {args.labels_out}")
    return 0


# --- other commands ---


def cmd_lr_find(args, extra: list[str], argv: list[str]) -> int:
    from .config import parse_overrides
    from .runner import lr_find_experiment

    _setup(args)
    if not args.experiment:
        raise ConfigError("lr-find: name an experiment (see `mlrepro list`)")
    if not 0 < args.start < args.end:
        raise ConfigError(
            f"--start and --end must satisfy 0 < start < end, got {args.start} and {args.end}"
        )
    run_dir, result = lr_find_experiment(
        args.experiment,
        overrides=parse_overrides(extra),
        preset=_preset(args),
        seed=args.seed,
        out=args.out,
        device=args.device,
        data_dir=args.data_dir,
        verbose=not args.quiet,
        argv=argv,
        start_lr=args.start,
        end_lr=args.end,
        num_steps=args.steps,
        suggestion=args.suggestion,
    )
    for name, lr in result.suggestions.items():
        print(f"{name:>11}: {lr:.3g}" + ("   <- suggested" if name == result.default else ""))
    print(
        f"swept {len(result.lrs)} steps"
        + (" (stopped: loss diverged)" if result.stopped_early else "")
    )
    print(run_dir.path)
    return 0


def cmd_schedule_plot(args) -> int:
    from .engine.schedules import SCHEDULES, trace
    from .plotting import plt, save_figure

    unknown = [s for s in args.schedules if s not in SCHEDULES]
    if unknown:
        raise ConfigError(f"unknown schedule {unknown[0]!r}; valid: {', '.join(SCHEDULES)}")
    try:
        milestones = [int(m) for m in args.milestones.split(",") if m.strip()]
    except ValueError:
        raise ConfigError(
            f"--milestones expects comma-separated integers, got {args.milestones!r}"
        ) from None
    if not args.lr > 0:
        raise ConfigError(f"--lr must be > 0, got {args.lr}")
    _check_output_file(args.output, "--output", "png")
    fig, (ax_lr, ax_m) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    for name in args.schedules:
        try:
            lrs, moms = trace(
                name,
                epochs=args.epochs,
                steps_per_epoch=args.steps_per_epoch,
                lr=args.lr,
                t_mult=args.t_mult,
                cycle_epochs=args.cycle_epochs,
                restart_decay=args.restart_decay,
                milestones_epochs=milestones,
                three_phase=args.three_phase,
            )
        except (ValueError, ZeroDivisionError) as e:
            plt.close(fig)
            raise ConfigError(f"schedule {name}: {e}") from None
        ax_lr.plot(lrs, label=name)
        ax_m.plot(moms, label=name)
    ax_lr.set(
        ylabel="learning rate", title=f"{args.epochs} epochs × {args.steps_per_epoch} iterations"
    )
    ax_m.set(xlabel="iteration", ylabel="momentum")
    for ax in (ax_lr, ax_m):
        ax.grid(alpha=0.3)
        ax.legend()
    save_figure(fig, args.output)
    print(args.output)
    return 0


def cmd_search(args, extra: list[str]) -> int:
    from .config import parse_overrides
    from .search import parse_param, run_search

    _setup(args)
    if not args.experiment:
        raise ConfigError("search: name an experiment (see `mlrepro list`)")
    if not args.param:
        raise ConfigError("search: give at least one --param NAME=KIND:...")
    params = [parse_param(p) for p in args.param]
    study = run_search(
        args.experiment,
        params,
        trials=args.trials,
        sampler=args.sampler,
        storage=args.storage,
        study_name=args.study_name,
        seed=args.seed,
        preset=_preset(args),
        overrides=parse_overrides(extra),
        out=args.out,
        device=args.device,
        data_dir=args.data_dir,
        verbose=not args.quiet,
        workers=args.workers,
        threads=args.threads,
        track=_tracker(args),
    )
    done = [t for t in study.trials if t.value is not None]
    if not done:
        raise ConfigError(f"search: none of the {len(study.trials)} trials reported its metric")
    best = study.best_trial
    print(
        f"{len(done)} trials; best {best.value:.6g} with "
        + ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items()
        )
        + f" (trial {best.number}: {best.user_attrs.get('run_dir')})"
    )
    print(Path(args.out) / "search" / study.study_name)
    return 0


def cmd_play(args) -> int:
    from .runfolder import load_run

    rd, record, exp, cfg = load_run(args.run_dir, "play")
    if exp.play is None:
        raise ConfigError(f"play: {args.run_dir} is a run of {exp.name}, which has no agent")
    exp.check_requirements()
    if args.gif:
        _check_output_file(args.gif, "--gif", "gif")
    if not args.fps > 0:
        raise ConfigError(f"--fps must be > 0, got {args.fps}")
    try:
        out = exp.play(cfg, rd, episodes=args.episodes, gif=args.gif, seed=args.seed, fps=args.fps)
    except FileNotFoundError as e:
        raise ConfigError(f"play: {e}") from None
    print("scores: " + " ".join(f"{s:.4g}" for s in out["scores"]))  # 83, -0.061
    print(
        f"mean score: {out['mean_score']:.4g} over {len(out['scores'])} episodes "
        f"(checkpoint after epoch {out['epoch']})"
    )
    if out.get("actions"):
        steps = sum(out["actions"].values())
        shares = ", ".join(f"{label} {n / steps:.0%}" for label, n in out["actions"].items() if n)
        print(f"actions: {shares}; {out['steps_per_episode']:.1f} steps per episode")
    if args.gif:
        print(f"gif: {args.gif} ({out['frames']} frames)")
    return 0


def cmd_export(args) -> int:
    from .export import export_onnx, onnx_max_abs_diff
    from .runfolder import load_run_model, test_inputs

    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise ConfigError(f"--data-dir: {args.data_dir} is not a folder")
    path = export_onnx(args.run_dir, args.output, opset=args.opset)
    print(
        f"onnx: {path} ({path.stat().st_size / 1e6:.1f} MB; "
        "input 'pixels' in [0, 1], any batch size)"
    )
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("(install onnxruntime to check the export against PyTorch)")
        return 0
    import torch

    model, spec, record = load_run_model(args.run_dir, "export")
    x, y, _, _ = test_inputs(spec, args.data_dir or record.get("data_dir"), 256)
    diff = onnx_max_abs_diff(path, model, x)
    with torch.inference_mode():
        agree = (model(x).argmax(1) == y).float().mean().item()
    print(
        f"onnxruntime vs PyTorch on {len(x)} test images: max |Δ| = {diff:.2e}; "
        f"accuracy on them {agree:.4f}"
    )
    return 0


def cmd_attack(args) -> int:
    from .runfolder import attack_run

    _setup(args)
    m, json_path, png_path = attack_run(
        args.run_dir,
        args.attack,
        args.eps,
        steps=args.steps,
        alpha=args.alpha,
        random_start=not args.no_random_start,
        target=args.target,
        limit=args.limit,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        device=args.device,
        seed=args.seed,
        progress=not args.quiet,
    )
    print(f"{args.attack} at eps={args.eps:g} on {m['n']} {m['dataset']} test images")
    for k in (
        "clean_accuracy",
        "adversarial_accuracy",
        "attack_success_rate",
        "mean_linf",
        "mean_l2",
    ):
        print(f"{k}: {m[k]:.4f}")
    print(f"metrics: {json_path}\nexamples: {png_path}")
    return 0


def cmd_report(args) -> int:
    from .reporting import update_readme

    n = update_readme(args.readme, args.results_dir)
    print(f"{args.readme}: results table regenerated from {n} file(s) in {args.results_dir}")
    return 0


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it stops as on Ctrl-C."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (`kill`, a batch scheduler's stop, `docker stop`) stops a command the way Ctrl-C
    does: the run keeps its last checkpoint and says how to continue, and the ViZDoom engines
    and worker processes are closed instead of left running. Only in the main thread, and only
    where SIGTERM still has its default action (an embedding program's handler is kept)."""
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def on_term(signum, frame):
        from .io import interrupt

        interrupt(_Terminated())  # after the file being written, if one is

    signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    with _sigterm_as_interrupt():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as e:  # --version, or a one-line argparse error (see _Parser)
        return int(e.code or 0)
    if extra and args.command not in ("run", "lr-find", "search"):
        print(
            f"mlrepro: error: {args.command}: unrecognized arguments: {' '.join(extra)}",
            file=sys.stderr,
        )
        return 2
    commands = {
        "list": cmd_list,
        "demo": lambda a: cmd_demo(a, argv),
        "cache": cmd_cache,
        "linreg": cmd_linreg,
        "kmeans": cmd_kmeans,
        "schedule-plot": cmd_schedule_plot,
        "play": cmd_play,
        "export": cmd_export,
        "attack": cmd_attack,
        "report": cmd_report,
        "aggregate": lambda a: cmd_aggregate(a, argv),
        "run": lambda a: cmd_run(a, extra, argv),
        "lr-find": lambda a: cmd_lr_find(a, extra, argv),
        "search": lambda a: cmd_search(a, extra),
    }
    try:
        if getattr(args, "help", False):
            return _help(parser, args.command, args.experiment)
        return commands[args.command](args)
    except MlreproError as e:
        print(f"mlrepro: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except RunInterrupted as e:
        print(f"mlrepro: interrupted; {e.how_to_continue}", file=sys.stderr)
        return 143 if isinstance(e.__context__, _Terminated) else 130
    except KeyboardInterrupt as e:
        print("mlrepro: interrupted", file=sys.stderr)
        return 143 if isinstance(e, _Terminated) else 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
