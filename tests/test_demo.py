"""`mlrepro demo`: one compact line per experiment, the sample notice once, a summary table, and an
index.html with one section per experiment whose figures exist; `mlrepro cache`; slim
checkpoints."""

import html.parser
import json
from pathlib import Path

import pytest
import torch

from mlrepro.cli import main
from mlrepro.experiments import EXPERIMENTS, get_experiment


class Sections(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.images = [], {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs["id"])
            self.images[attrs["id"]] = []
        elif tag == "img":
            self.images[self.sections[-1]].append(attrs["src"])


def test_demo_explains_itself_and_writes_one_page(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("MLREPRO_DATA", raising=False)  # nothing named: the bundled samples
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLREPRO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MLREPRO_OFFLINE", "1")
    assert main(["demo", "--out", str(tmp_path / "demo"), "--threads", "1"]) == 0
    out, err = capsys.readouterr()
    runnable = [n for n in EXPERIMENTS if not get_experiment(n).missing_requirements()]
    lines = out.splitlines()
    assert out.count("samples bundled with mlrepro") == 1 and "SampleDataWarning" not in out + err
    for name in EXPERIMENTS:
        (line,) = [x for x in lines if x.split("] ")[-1].startswith(name + " ")]
        assert len(line) <= 120, line  # one compact line each
    assert "reproduce with" in out and "mlrepro run capsnet-mnist --preset cpu-1epoch" in out
    assert "disk: " in out and "dataset cache" in out

    page = tmp_path / "demo" / "index.html"
    parser = Sections()
    parser.feed(page.read_text())
    assert parser.sections == runnable
    for name in runnable:
        assert parser.images[name], name
        for src in parser.images[name]:
            assert (page.parent / src).is_file(), src


def test_cache_shows_and_clears(capsys, tmp_path, monkeypatch, data_dir):
    monkeypatch.setenv("MLREPRO_CACHE", str(tmp_path / "cache"))
    assert main(["cache"]) == 0 and "empty" in capsys.readouterr().out
    extra = ["--data-dir", str(data_dir)] if data_dir else []
    assert main(["run", "mnist-mlp", "--quick", "--out", str(tmp_path / "runs"), "-q", *extra]) == 0
    capsys.readouterr()
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert "mnist" in out and "train" in out and "MB in" in out
    assert main(["cache", "--clear"]) == 0 and "cleared" in capsys.readouterr().out
    assert not list((tmp_path / "cache").rglob("*.npy"))


@pytest.mark.parametrize("keep", ["last", "all"])
def test_a_finished_run_keeps_a_slim_checkpoint_unless_asked_for_all(
    capsys, tmp_path, keep, data_dir
):
    extra = ["--data-dir", str(data_dir)] if data_dir else []
    assert (
        main(
            [
                "run",
                "mnist-mlp",
                "--quick",
                "--out",
                str(tmp_path),
                "-q",
                "--keep-checkpoints",
                keep,
                *extra,
            ]
        )
        == 0
    )
    run = Path(capsys.readouterr().out.strip().splitlines()[-1])
    names = sorted(p.name for p in run.glob("checkpoint*.pt"))
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert "model" in state and state["epoch"] == 2
    if keep == "last":
        assert names == ["checkpoint.pt"] and state["finished"] and "optimizer" not in state
    else:
        assert names == ["checkpoint-e1.pt", "checkpoint-e2.pt", "checkpoint.pt"]
        assert "optimizer" in torch.load(run / "checkpoint-e1.pt", weights_only=True)
    assert json.loads((run / "metrics.json").read_text())["test_accuracy"] > 0.5
    # the slim model still loads
    assert main(["export", str(run), "-o", str(tmp_path / "m.onnx")]) == 0
