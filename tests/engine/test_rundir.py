import json
import os
import pickle

import pytest
import torch

from mlrepro import io as io_mod
from mlrepro.engine import RunDir, atomic_write_json, atomic_write_text


def test_new_run_dirs_are_unique_and_make_plots_on_demand(tmp_path):
    a = RunDir.new(tmp_path, "exp", 0)
    b = RunDir.new(tmp_path, "exp", 0)
    assert a.path != b.path and a.path.parent == b.path.parent == tmp_path / "exp"
    assert not (a.path / "plots").exists()
    assert a.plot_path("x.png").parent.is_dir()


def test_opening_a_run_dir_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        RunDir(tmp_path / "typo")
    assert not (tmp_path / "typo").exists()


def test_config_metrics_history_roundtrip(tmp_path):
    rd = RunDir.create(tmp_path / "r")
    rd.write_config({"lr": 0.1, "t": torch.tensor([1, 2])})
    rd.write_metrics({"acc": 0.5, "bad": float("nan")})
    rd.append_history({"epoch": 1, "loss": 1.0})
    rd.append_history({"epoch": 2, "loss": 0.5})
    assert rd.read_config() == {"lr": 0.1, "t": [1, 2]}
    assert rd.read_metrics() == {"acc": 0.5, "bad": None}  # NaN stored as null: still valid JSON
    lines = (rd.path / "history.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    assert RunDir(rd.path).history()[-1] == {"epoch": 2, "loss": 0.5}  # reopened from disk


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    atomic_write_json(target, {"v": 1})

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(io_mod.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_write_interrupted_during_serialisation_keeps_old_file(tmp_path):
    target = tmp_path / "config.json"
    atomic_write_text(target, "old")
    with pytest.raises(TypeError):
        atomic_write_json(target, {"x": object()})
    assert target.read_text() == "old"


def test_checkpoint_roundtrip_and_untrusted_pickle_refused(tmp_path):
    rd = RunDir(tmp_path)
    assert rd.load_checkpoint() is None
    rd.save_checkpoint({"model": {"w": torch.ones(2)}, "epoch": 3})
    state = rd.load_checkpoint()
    assert state["epoch"] == 3 and torch.equal(state["model"]["w"], torch.ones(2))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    rd.checkpoint_path.write_bytes(pickle.dumps({"x": Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError):
        rd.load_checkpoint()
    assert not (tmp_path / "pwned").exists()


def test_an_interrupt_during_a_checkpoint_write_waits_for_the_whole_file(tmp_path):
    """The CLI's SIGTERM handler calls mlrepro.io.interrupt: inside torch.save it would surface
    as a RuntimeError and leave no checkpoint; deferred, the file is whole, then it stops."""
    import collections

    import torch

    from mlrepro.io import atomic_torch_save, interrupt

    class Stop(KeyboardInterrupt):
        pass

    class Tensorish:
        def __reduce__(self):  # runs in the middle of torch.save's writing
            interrupt(Stop())
            return (collections.OrderedDict, ())

    path = tmp_path / "checkpoint.pt"
    with pytest.raises(Stop):
        atomic_torch_save({"w": torch.ones(3), "x": Tensorish()}, path)
    state = torch.load(path, weights_only=True)
    assert state["x"] == collections.OrderedDict() and torch.equal(state["w"], torch.ones(3))
    with pytest.raises(Stop):  # outside a write it is raised at once
        interrupt(Stop())
