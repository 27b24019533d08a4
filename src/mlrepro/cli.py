"""`mlrepro list | run EXP [--key value ...] | aggregate RUN_DIR... | demo | lr-find EXP | schedule-plot | linreg CSV | kmeans CSV | play RUN_DIR | attack RUN_DIR | report`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import ConfigError, MlreproError


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("expected at least one seed")
    return seeds


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs", help="root folder for run folders (default: runs)")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps")
    p.add_argument("--data-dir", default=None, help="dataset folder (default: $MLREPRO_DATA)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="mlrepro", allow_abbrev=False,
                                     description="Reproduce classic ML results with one command.")
    parser.add_argument("--version", action="version", version=f"mlrepro {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list experiments (with -v: their options)")
    p.add_argument("-v", "--verbose", action="store_true")

    p = sub.add_parser("run", allow_abbrev=False, help="run an experiment",
                       description="Run EXP; any other --key value overrides a field of its Config.")
    p.add_argument("experiment", nargs="?", help="experiment name (see `mlrepro list`)")
    p.add_argument("--quick", action="store_true", help="the seconds-long preset")
    p.add_argument("--preset", default=None, help="a named preset of the experiment")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=_seeds, default=None,
                   help="comma-separated seeds; writes results/EXP.json with mean ± std")
    p.add_argument("--results-dir", default="results", help="where --seeds writes its summary")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a killed run")
    _add_common(p)

    p = sub.add_parser("aggregate", help="mean ± std of finished runs (e.g. seeds run side by side)",
                       description="Write results/EXP[.PRESET].json, as `run --seeds` does, from "
                                   "finished run folders of one experiment, preset and config.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--results-dir", default="results", help="where the summary goes")

    p = sub.add_parser("demo", help="a short tour: the quick preset of every experiment")
    _add_common(p)

    p = sub.add_parser("linreg", help="fit a linear regression to a CSV file")
    p.add_argument("csv")
    p.add_argument("--target", required=True, help="the column to predict")
    p.add_argument("--columns", default=None, help="comma-separated feature columns (default: all others)")
    p.add_argument("--solver", choices=["gd", "closed_form"], default="gd")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--max-iter", type=int, default=100_000)
    p.add_argument("--test-frac", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("kmeans", help="cluster the rows of a CSV file")
    p.add_argument("csv")
    p.add_argument("-k", "--n-clusters", type=int, required=True)
    p.add_argument("--columns", default=None, help="comma-separated columns (default: all)")
    p.add_argument("--n-init", type=int, default=10)
    p.add_argument("--max-iter", type=int, default=300)
    p.add_argument("--metric", choices=["euclidean", "cosine"], default="euclidean")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--labels-out", default=None, help="write one cluster label per row to this file")

    p = sub.add_parser("lr-find", allow_abbrev=False, help="LR range test on an experiment's model",
                       description="Sweep the LR exponentially; other --key value set Config fields.")
    p.add_argument("experiment")
    p.add_argument("--start", type=float, default=1e-7, help="first LR (default 1e-7)")
    p.add_argument("--end", type=float, default=10.0, help="last LR (default 10)")
    p.add_argument("--steps", type=int, default=100, help="number of batches (default 100)")
    p.add_argument("--suggestion", default="valley", choices=["valley", "steepest", "minimum/10", "blog"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--preset", default=None)
    p.add_argument("--seed", type=int, default=0)
    _add_common(p)

    p = sub.add_parser("schedule-plot", help="draw a schedule's LR and momentum per iteration")
    p.add_argument("schedules", nargs="+", help="names: constant, onecycle, cosine-restarts, "
                   "cosine-restarts-decay, warmup-cosine, piecewise")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--steps-per-epoch", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.1, help="peak LR")
    p.add_argument("--t-mult", type=float, default=2.0)
    p.add_argument("--cycle-epochs", type=float, default=1.0)
    p.add_argument("--restart-decay", type=float, default=0.5)
    p.add_argument("--milestones", default="60,120,160", help="piecewise milestones, in epochs")
    p.add_argument("--three-phase", action="store_true")
    p.add_argument("--output", "-o", default="schedules.png")

    p = sub.add_parser("search", allow_abbrev=False, help="hyperparameter search (Optuna)",
                       description="Search Config fields; other --key value fix fields for every trial.")
    p.add_argument("experiment")
    p.add_argument("--param", action="append", required=True, metavar="NAME=KIND:...",
                   help="lr=log:1e-4:1, dropout=float:0:0.5, width=int:16:128, opt=choice:sgd,adam")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--sampler", choices=["random", "grid", "tpe"], default="tpe")
    p.add_argument("--storage", default=None, help="e.g. sqlite:///study.db (shared, resumable)")
    p.add_argument("--study-name", default=None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--preset", default=None)
    p.add_argument("--seed", type=int, default=0)
    _add_common(p)

    p = sub.add_parser("play", help="replay a trained agent (greedy) from a run folder; optional GIF")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--gif", default=None, help="write every tic of the episodes to this GIF")
    p.add_argument("--seed", type=int, default=0, help="episode i is played with seed SEED + i")
    p.add_argument("--fps", type=float, default=35.0, help="GIF speed (35 = Doom's real time)")

    p = sub.add_parser("export", help="export a run's trained model (ONNX)")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("--output", "-o", default=None, help="default: RUN_DIR/model.onnx")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    p.add_argument("--data-dir", default=None, help="dataset folder for the check against PyTorch")

    p = sub.add_parser("attack", help="attack a run's trained model (FGSM, BIM, PGD) on its test set")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--attack", choices=["fgsm", "bim", "pgd", "pgd-l2"], default="fgsm")
    p.add_argument("--eps", type=float, default=0.1, help="ε: L∞ (or L2) radius, pixels in [0, 1]")
    p.add_argument("--steps", type=int, default=None, help="iterations (pgd: 10, bim: Kurakin's rule)")
    p.add_argument("--alpha", type=float, default=None, help="step size (pgd: 2.5·ε/steps, bim: 1/255)")
    p.add_argument("--no-random-start", action="store_true", help="pgd: start at the input")
    p.add_argument("--target", type=int, default=None, metavar="CLASS", help="targeted: push every input to CLASS")
    p.add_argument("--limit", type=int, default=0, help="first N test images (default: all)")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0, help="seeds PGD's random start")
    _add_common(p)

    p = sub.add_parser("report", help="regenerate the README's results table from results/")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--readme", default="README.md")
    return parser


def cmd_list(args) -> int:
    from .config import config_help
    from .experiments import EXPERIMENTS, get_experiment, summary

    for name in EXPERIMENTS:
        exp = get_experiment(name)
        print(f"{name:<22} {summary(exp)}")
        if args.verbose:
            print(f"{'':<22} presets: {', '.join(exp.PRESETS) or '-'}")
            for opt, typ, default in config_help(exp.Config):
                print(f"{'':<24}{opt} ({typ}, default {default})")
    return 0


def _setup(args) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise ConfigError(f"--data-dir: {args.data_dir} is not a folder")


def cmd_run(args, extra: list[str], argv: list[str]) -> int:
    from .config import parse_overrides
    from .runner import run_experiment, run_seeds

    _setup(args)
    if args.quick and args.preset:
        raise ConfigError("give either --quick or --preset, not both")
    preset = "quick" if args.quick else args.preset
    overrides = parse_overrides(extra)
    common = {"out": args.out, "device": args.device, "data_dir": args.data_dir, "verbose": not args.quiet}
    if args.resume:
        if overrides or preset or args.seeds:
            raise ConfigError("--resume continues a run as it was configured; drop the other options")
        run_dir, metrics = run_experiment(args.experiment, resume=args.resume, argv=argv, **common)
    elif args.seeds:
        path, summary = run_seeds(args.experiment, args.seeds, results_dir=args.results_dir,
                                  preset=preset, overrides=overrides, argv=argv, **common)
        if summary:  # empty in torchrun's other processes: rank 0 writes and prints it
            _print_summary(path, summary)
        return 0
    else:
        run_dir, metrics = run_experiment(args.experiment, preset=preset, overrides=overrides,
                                          seed=args.seed, argv=argv, **common)
    _print_metrics(metrics)
    print(run_dir.path)
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

    path, summary = aggregate_runs(args.run_dirs, results_dir=args.results_dir, argv=argv)
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


def cmd_demo(args, argv: list[str]) -> int:
    import importlib.util

    from .experiments import EXPERIMENTS, get_experiment
    from .runner import run_experiment

    _setup(args)
    out = Path(args.out) / "demo" if args.out == "runs" else Path(args.out)
    rows = []
    skipped = []
    for name in EXPERIMENTS:
        print(f"== {name} (quick preset)", flush=True)
        missing = [m for m in getattr(get_experiment(name), "REQUIRES", ())
                   if importlib.util.find_spec(m) is None]
        if missing:
            skipped.append(name)
            print(f"   skipped: needs {', '.join(missing)} (pip install 'mlrepro[rl]')")
            continue
        run_dir, metrics = run_experiment(name, preset="quick", out=out, device=args.device,
                                          data_dir=args.data_dir, verbose=not args.quiet,
                                          argv=["run", name, "--quick"])
        headline = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()
                             if isinstance(v, float) and k != "wall_time_s")
        rows.append((name, run_dir.path, metrics))
        print(f"   {headline}")
        for note in metrics.get("notes", []):
            print(f"   note: {note}")
    print("\nWhere everything went:")
    for name, path, metrics in rows:
        files = [f for f in ("metrics.json", "history.jsonl", "checkpoint.pt") if (path / f).exists()]
        plots = sorted(p.name for p in (path / "plots").glob("*.png"))
        print(f"  {name:<18} {path}  ({', '.join(files)}; plots/: {', '.join(plots) or '-'})")
    if any(m.get("notes") for _, _, m in rows):
        print("\nSome runs used the small bundled data samples. For full-size results, point "
              "--data-dir or MLREPRO_DATA at a folder with the full datasets.")
    print("Full reproductions: mlrepro run EXP --seeds 0,1,2  (see `mlrepro list`)")
    return 0


def _columns(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def cmd_linreg(args) -> int:
    import numpy as np

    from .classic import LinearRegressionGD, read_csv

    if not 0 <= args.test_frac < 1:
        raise ConfigError(f"--test-frac must be in [0, 1), got {args.test_frac}")
    X, y, names = read_csv(args.csv, target=args.target, columns=_columns(args.columns))
    order = np.random.default_rng(args.seed).permutation(len(X))
    n_test = round(args.test_frac * len(X))
    test, train = order[:n_test], order[n_test:]
    model = LinearRegressionGD(args.lr, max_iter=args.max_iter, solver=args.solver).fit(X[train], y[train])
    print(f"{args.target} = {float(np.ravel(model.intercept_)[0]):.6g}"
          + "".join(f" + {c:.6g}·{n}" for c, n in zip(np.ravel(model.coef_), names)))
    print(f"train R²: {model.score(X[train], y[train]):.6f}  ({len(train)} rows)")
    if n_test:
        print(f"test R²:  {model.score(X[test], y[test]):.6f}  ({n_test} rows)")
    print(f"solver: {args.solver}, iterations: {model.n_iter_}")
    return 0


def cmd_kmeans(args) -> int:
    import numpy as np

    from .classic import KMeans, read_csv
    from .engine.rundir import atomic_write_text

    X, _, names = read_csv(args.csv, columns=_columns(args.columns))
    km = KMeans(args.n_clusters, n_init=args.n_init, max_iter=args.max_iter, metric=args.metric,
                random_state=args.seed).fit(X)
    counts = np.bincount(km.labels_, minlength=args.n_clusters)
    print(f"inertia: {km.inertia_:.6g}  iterations: {km.n_iter_}")
    print("cluster  size  centre (" + ", ".join(names) + ")")
    for i, (c, n) in enumerate(zip(km.cluster_centers_, counts)):
        print(f"{i:>7} {n:>5}  " + ", ".join(f"{v:.4g}" for v in c))
    if args.labels_out:
        atomic_write_text(args.labels_out, "".join(f"{v}\n" for v in km.labels_))
        print(f"labels: {args.labels_out}")
    return 0


def cmd_lr_find(args, extra: list[str], argv: list[str]) -> int:
    from .config import parse_overrides
    from .runner import lr_find_experiment

    _setup(args)
    if args.quick and args.preset:
        raise ConfigError("give either --quick or --preset, not both")
    run_dir, result = lr_find_experiment(
        args.experiment, overrides=parse_overrides(extra), preset="quick" if args.quick else args.preset,
        seed=args.seed, out=args.out, device=args.device, data_dir=args.data_dir,
        verbose=not args.quiet, argv=argv, start_lr=args.start, end_lr=args.end,
        num_steps=args.steps, suggestion=args.suggestion)
    for name, lr in result.suggestions.items():
        print(f"{name:>11}: {lr:.3g}" + ("   <- suggested" if name == result.default else ""))
    print(f"swept {len(result.lrs)} steps" + (" (stopped: loss diverged)" if result.stopped_early else ""))
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
        raise ConfigError(f"--milestones expects comma-separated integers, got {args.milestones!r}") from None
    fig, (ax_lr, ax_m) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    for name in args.schedules:
        try:
            lrs, moms = trace(name, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, lr=args.lr,
                              t_mult=args.t_mult, cycle_epochs=args.cycle_epochs,
                              restart_decay=args.restart_decay, milestones_epochs=milestones,
                              three_phase=args.three_phase)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        ax_lr.plot(lrs, label=name)
        ax_m.plot(moms, label=name)
    ax_lr.set(ylabel="learning rate", title=f"{args.epochs} epochs × {args.steps_per_epoch} iterations")
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
    if args.quick and args.preset:
        raise ConfigError("give either --quick or --preset, not both")
    study = run_search(args.experiment, [parse_param(p) for p in args.param], trials=args.trials,
                       sampler=args.sampler, storage=args.storage, study_name=args.study_name,
                       seed=args.seed, preset="quick" if args.quick else args.preset,
                       overrides=parse_overrides(extra), out=args.out, device=args.device,
                       data_dir=args.data_dir, verbose=not args.quiet)
    done = [t for t in study.trials if t.value is not None]
    print(f"{len(done)} trials; best {study.best_value:.6g} with "
          + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in study.best_params.items()))
    print(Path(args.out) / "search" / study.study_name)
    return 0


def cmd_play(args) -> int:
    from .config import build_config
    from .engine import RunDir
    from .experiments import get_experiment

    if not (Path(args.run_dir) / "config.json").exists():
        raise ConfigError(f"play: {args.run_dir} is not a run folder (no config.json)")
    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    run_dir = RunDir(args.run_dir)
    record = run_dir.read_config()
    exp = get_experiment(record["experiment"])
    if not hasattr(exp, "play"):
        raise ConfigError(f"play: {args.run_dir} is a run of {record['experiment']}, which has no agent")
    cfg = build_config(exp.Config, overrides=record["config"], what=record["experiment"])
    try:
        out = exp.play(cfg, run_dir, episodes=args.episodes, gif=args.gif, seed=args.seed,
                       fps=args.fps)
    except FileNotFoundError as e:
        raise ConfigError(f"play: {e}") from None
    print("scores: " + " ".join(f"{s:.0f}" for s in out["scores"]))
    print(f"mean score: {out['mean_score']:.2f} over {len(out['scores'])} episodes "
          f"(checkpoint after epoch {out['epoch']})")
    if args.gif:
        print(f"gif: {args.gif} ({out['frames']} frames)")
    return 0


def cmd_export(args) -> int:
    from .export import export_onnx, load_run_model, onnx_max_abs_diff

    path = export_onnx(args.run_dir, args.output, opset=args.opset)
    print(f"onnx: {path} ({path.stat().st_size / 1e6:.1f} MB; input 'pixels' in [0, 1], any batch size)")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("(install onnxruntime to check the export against PyTorch)")
        return 0
    import torch

    from .data import load_dataset

    model, shape, record = load_run_model(args.run_dir)
    test = load_dataset(record["config"].get("dataset", "mnist"), "test",
                        args.data_dir or record.get("data_dir"))
    x = test.images[:256].float().div(255).reshape(-1, *shape)
    diff = onnx_max_abs_diff(path, model, x)
    with torch.inference_mode():
        agree = (model(x).argmax(1) == test.labels[:256]).float().mean().item()
    print(f"onnxruntime vs PyTorch on {len(x)} test images: max |Δ| = {diff:.2e}; "
          f"accuracy on them {agree:.4f}")
    return 0


def cmd_attack(args) -> int:
    from .attacks.evaluate import attack_run

    _setup(args)
    m, json_path, png_path = attack_run(
        args.run_dir, args.attack, args.eps, steps=args.steps, alpha=args.alpha,
        random_start=not args.no_random_start, target=args.target, limit=args.limit,
        batch_size=args.batch_size, data_dir=args.data_dir, device=args.device, seed=args.seed)
    print(f"{args.attack} at eps={args.eps:g} on {m['n']} {m['dataset']} test images")
    for k in ("clean_accuracy", "adversarial_accuracy", "attack_success_rate", "mean_linf", "mean_l2"):
        print(f"{k}: {m[k]:.4f}")
    print(f"metrics: {json_path}\nexamples: {png_path}")
    return 0


def cmd_report(args) -> int:
    from .reporting import update_readme

    n = update_readme(args.readme, args.results_dir)
    print(f"{args.readme}: results table regenerated from {n} file(s) in {args.results_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("run", "lr-find", "search"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "list":
            return cmd_list(args)
        if args.command == "run":
            return cmd_run(args, extra, argv)
        if args.command == "aggregate":
            return cmd_aggregate(args, argv)
        if args.command == "demo":
            return cmd_demo(args, argv)
        if args.command == "linreg":
            return cmd_linreg(args)
        if args.command == "kmeans":
            return cmd_kmeans(args)
        if args.command == "lr-find":
            return cmd_lr_find(args, extra, argv)
        if args.command == "schedule-plot":
            return cmd_schedule_plot(args)
        if args.command == "search":
            return cmd_search(args, extra)
        if args.command == "play":
            return cmd_play(args)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "attack":
            return cmd_attack(args)
        if args.command == "report":
            return cmd_report(args)
    except MlreproError as e:
        print(f"mlrepro: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlrepro: interrupted (a run can be continued with `mlrepro run --resume RUN_DIR`)",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    parser.error(f"unknown command {args.command}")
    return 2
