"""Property: whatever values any option of any subcommand gets, the CLI ends with exit 0 or exit 2
and one `mlrepro: error: …` line, never a traceback.

Values are generated (hypothesis) from each option's own argparse definition, plus the Config fields
of the experiments a command takes. Commands that would train for long are made cheap, not skipped:
`run` of an expensive experiment goes through `--dry-run`, counts stay small.
"""

import argparse
import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mlrepro.cli import build_parser, main  # noqa: E402
from mlrepro.experiments import get_experiment  # noqa: E402
from mlrepro.runner import run_experiment  # noqa: E402

CHEAP = ["linreg-line", "kmeans-cola"]  # run for real
# --dry-run
COSTLY = ["mnist-mlp", "mnist-cnn", "fast-cifar10", "dqn-vizdoom-basic", "capsnet-mnist"]
JUNK = ["", "-", "--", "nope", "0", "-1", "1e400", "nan", "inf", "1,2", ",,", "é", "x" * 300]
NUMBERS = st.one_of(
    st.integers(-3, 12).map(str),
    st.sampled_from(["0.5", "-0.1", "1e-3", "nan", "inf", "1e30", "0x10", "3.0"]),
)


@pytest.fixture(scope="module")
def world(tmp_path_factory, data_dir):
    """Files and run folders for the options that take paths."""
    root = tmp_path_factory.mktemp("world")
    (root / "file.txt").write_text("not a run\n")
    (root / "data.csv").write_text("a,b,c\n1,2,3\n2,3,5\n3,5,8\n4,7,11\n5,8,13\n")
    (root / "text.csv").write_text("name,a\nx,1\ny,2\n")
    (root / "dir").mkdir()
    mlp, _ = run_experiment(
        "mnist-mlp",
        preset="quick",
        out=root / "runs",
        device="cpu",
        data_dir=str(data_dir) if data_dir else None,
        verbose=False,
    )
    lin, _ = run_experiment(
        "linreg-line", preset="quick", out=root / "runs", device="cpu", verbose=False
    )
    return {"root": root, "runs": [str(mlp.path), str(lin.path)]}


def _paths(world) -> list[str]:
    r = world["root"]
    return [
        str(r / "file.txt"),
        str(r / "dir"),
        str(r / "missing" / "x"),
        str(r / "data.csv"),
        str(r / "text.csv"),
        *world["runs"],
        "/",
        "",
    ]


def _value(action: argparse.Action, world, draw) -> str | None:
    """A generated value for one option, from its definition."""
    if action.choices:
        return draw(
            st.one_of(st.sampled_from([str(c) for c in action.choices]), st.sampled_from(JUNK))
        )
    kind = getattr(action.type, "__name__", "")
    if action.type is not None and kind != "str":
        return draw(st.one_of(NUMBERS, st.sampled_from(JUNK)))
    if action.dest in (
        "out",
        "data_dir",
        "output",
        "results_dir",
        "labels_out",
        "gif",
        "readme",
        "resume",
        "storage",
    ):
        return draw(
            st.sampled_from(_paths(world) + ["sqlite:///" + str(world["root"] / "s.db"), "x://"])
        )
    return draw(
        st.one_of(
            st.sampled_from(
                [
                    "a,b",
                    "lr=log:1e-3:1",
                    "lr=float:0:1",
                    "n=int:1:3",
                    "lr=choice:0.1,0.2",
                    "n_samples=int:10:20",
                ]
            ),
            st.sampled_from(JUNK),
        )
    )


@st.composite
def command_lines(draw, world):
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    name = draw(st.sampled_from(sorted(set(sub.choices) - {"demo"})))
    p = sub.choices[name]
    argv = [name]
    experiment = None
    for action in p._actions:
        if action.dest in ("help", "version"):
            continue
        if not action.option_strings:  # positional
            if action.dest == "experiment":
                experiment = draw(st.sampled_from(CHEAP + COSTLY + JUNK[:4]))
                argv.append(experiment)
            elif action.dest in ("run_dir", "run_dirs", "csv"):
                argv.append(draw(st.sampled_from(_paths(world))))
            else:  # schedule names
                argv.append(
                    draw(st.sampled_from(["onecycle", "piecewise", "constant", "linear", ""]))
                )
            continue
        if draw(st.integers(0, 4)):  # each option one time in five: valid command lines happen too
            continue
        flag = draw(st.sampled_from(action.option_strings))
        if action.nargs == 0:
            argv.append(flag)
        else:
            argv += [flag, _value(action, world, draw)]
    if experiment in COSTLY and name == "run":
        argv.append("--dry-run")
    if experiment in COSTLY and name in ("lr-find", "search"):
        argv += ["--quick"]
    if (
        experiment in CHEAP + COSTLY
        and name in ("run", "lr-find", "search")
        and draw(st.booleans())
    ):
        fields = list(get_experiment(experiment).config.__dataclass_fields__)
        for f in draw(st.lists(st.sampled_from(fields), max_size=3, unique=True)):
            argv += ["--" + f.replace("_", "-"), draw(st.one_of(NUMBERS, st.sampled_from(JUNK)))]
    return argv


@settings(
    max_examples=int(os.environ.get("MLREPRO_PROPERTY_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_options_end_in_exit_0_or_one_error_line(world, data, monkeypatch):
    argv = data.draw(command_lines(world))
    # Everything a command writes by default (runs/, results/, schedules.png) lands in a scratch
    # dir.
    # The working directory goes back before the scratch dir is removed: a later example (or
    # hypothesis itself, which resolves relative paths) must not run in a deleted directory.
    with tempfile.TemporaryDirectory() as scratch, monkeypatch.context() as m:
        m.chdir(scratch)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as e:  # argparse's own exits are also one line (cli._Parser)
                code = e.code
        text = err.getvalue()
        assert "Traceback" not in text, (argv, text)
        assert code in (0, 2), (argv, code, text)
        hypothesis.event(f"{argv[0]} exit {code}")
        if code == 2:
            errors = [line for line in text.splitlines() if line.startswith("mlrepro: error: ")]
            assert len(errors) == 1 and text.strip().splitlines()[-1] == errors[0], (argv, text)
    json.dumps(argv)  # the failing example is printable as a command line
    assert Path(world["root"] / "file.txt").read_text() == "not a run\n"  # inputs never overwritten
