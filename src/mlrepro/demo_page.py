"""The demo's one page to open: every run's headline, what its preset is for, the claim, the command
that reproduces it, and its figures (plain HTML, images linked from the run folders)."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path

from .experiment import Experiment
from .io import atomic_write_text

_STYLE = """body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}
section{border-top:1px solid #ccc;padding:.6em 0}table{border-collapse:collapse}
td{padding:.1em .8em .1em 0}img{max-width:520px;margin:.3em .5em .3em 0;border:1px solid #eee}
code{background:#f4f4f4;padding:0 .3em}"""


def _value(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))


def write_index(
    path: str | os.PathLike, runs: Sequence[tuple[Experiment, Path, dict]], *, data: str
) -> Path:
    """Write the page (atomically) and return its path; one <section> per run."""
    path = Path(path)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>mlrepro demo</title>"
        f"<style>{_STYLE}</style></head><body><h1>mlrepro demo</h1>",
        f"<p>The quick preset of each experiment: smoke tests on small data, seconds each. Their "
        f"numbers show that the code runs, not the claims; each section names its claim and the "
        f"command that reproduces it. Data: {html.escape(data)}.</p>",
    ]
    for exp, run_dir, metrics in runs:
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{_value(metrics.get(k))}</td></tr>"
            for k in (*exp.headline, "wall_time_s")
            if k in metrics
        )
        figures = "".join(
            f"<img src='{html.escape(os.path.relpath(p, path.parent))}' "
            f"alt='{html.escape(p.stem)}'>"
            for p in sorted((run_dir / "plots").glob("*.png"))
        )
        parts.append(
            f"<section id='{html.escape(exp.name)}'><h2>{html.escape(exp.name)}</h2>"
            f"<p>{html.escape(exp.summary)}</p>"
            f"<p><b>quick preset:</b> {html.escape(exp.presets['quick'].about)}. "
            f"<b>claim:</b> {html.escape(exp.claim)}. <b>reproduce with:</b> "
            f"<code>{html.escape(exp.command)}</code></p><table>{rows}</table>{figures}"
            f"<p>run folder: <code>{html.escape(str(run_dir))}</code></p></section>"
        )
    parts.append("</body></html>\n")
    atomic_write_text(path, "\n".join(parts))
    return path
