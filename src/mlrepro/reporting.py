"""The README's results table, generated from results/*.json so no number in it is typed by hand."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import MlreproError
from .io import atomic_write_text

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def _fmt(m: dict, n: int) -> str:
    mean, std = m["mean"], m["std"]
    if mean is None:
        return f"n/a in all {n} runs"
    missing = m.get("missing", 0)
    if missing:
        return f"{_fmt({**m, 'missing': 0}, n)} (n/a in {missing} of {n} runs)"
    if abs(mean) >= 1000:
        return f"{mean:.6g} ± {std:.2g}"
    return f"{mean:.4f} ± {std:.4f}"


def _machine(hw: dict) -> str:
    if hw.get("device_name"):
        return hw["device_name"]
    return f"{hw.get('cpu_count', '?')}-core CPU ({hw.get('processor', '?')})"


def _with_preset(cmd: str, preset: str | None) -> str:
    """`cmd` naming the summary's preset. A summary relabelled when its experiment's default
    changed (its `relabelled` field) was made without `--preset`; today the preset rebuilds it."""
    words = cmd.split()
    if (
        not preset
        or preset == "default"
        or "--preset" in words
        or f"--{preset}" in words
        or words[:2] != ["mlrepro", "run"]
        or len(words) < 3
    ):
        return cmd
    return " ".join([*words[:3], "--preset", preset, *words[3:]])


def _command(r: dict) -> str:
    """How to reproduce a summary: its command, or for seeds run separately and combined by
    `mlrepro aggregate`, the shortest per-seed command with the seed and local paths left out."""
    runs = r.get("run_commands")
    if not runs or not r["command"].startswith("mlrepro aggregate"):
        return f"`{_with_preset(r['command'], r.get('preset'))}`"

    def clean(cmd: str) -> str:
        words, out = cmd.split(), []
        for i, w in enumerate(words):
            if w in ("--out", "--data-dir") or (i and words[i - 1] in ("--out", "--data-dir")):
                continue
            out.append("S" if i and words[i - 1] == "--seed" else w)
        return _with_preset(" ".join(out), r.get("preset"))

    return f"`{min((clean(c) for c in runs), key=len)}` for each seed S, then `mlrepro aggregate`"


def results_table(results_dir: str | os.PathLike) -> tuple[str, int]:
    """Markdown table (and the number of result files it was built from)."""
    if not Path(results_dir).is_dir():
        raise MlreproError(f"--results-dir: {results_dir} is not a folder")
    files = sorted(Path(results_dir).glob("*.json"))
    rows = [
        (
            "| experiment | preset | claim (source) | ours: headline, mean ± std | n | wall time "
            "| machine, torch | command |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in files:
        try:
            r = json.loads(f.read_text())
            heads = r["headline"] or list(r["metrics"])[:1]
            ours = "<br>".join(
                f"{k} {_fmt(r['metrics'][k], r['n'])}" for k in heads if k in r["metrics"]
            )
            name = f"{r['experiment']} ({r['tag']})" if r.get("tag") else r["experiment"]
            rows.append(
                f"| {name} | {r['preset']} | {r.get('claim', '')} | {ours} | {r['n']} "
                f"| {r['wall_time_s']:.0f} s | {_machine(r['hardware'])}, torch {r['torch']} "
                f"| {_command(r)} |"
            )
        except (KeyError, ValueError, TypeError) as e:
            raise MlreproError(
                f"{f}: not a results summary ({e.__class__.__name__}: {e})"
            ) from None
    if not files:
        rows.append("| (no results yet: `mlrepro run EXP --seeds 0,1,2`) | | | | | | | |")
    return "\n".join(rows), len(files)


def update_readme(readme: str | os.PathLike, results_dir: str | os.PathLike) -> int:
    """Replace the text between the results markers in `readme`; returns the number of results."""
    path = Path(readme)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise MlreproError(
            f"--readme: cannot read {readme} ({getattr(e, 'strerror', None) or e}); run "
            "`mlrepro report` in the repository, or name the README with --readme"
        ) from None
    if BEGIN not in text or END not in text:
        raise MlreproError(f"{readme}: no '{BEGIN}' … '{END}' markers to put the table between")
    table, n = results_table(results_dir)
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    atomic_write_text(path, f"{head}{BEGIN}\n{table}\n{END}{tail}")
    return n
