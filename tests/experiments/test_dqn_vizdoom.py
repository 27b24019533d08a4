"""dqn-vizdoom-basic on the real environment: a killed run resumes to the same result; play → GIF."""

import json
from pathlib import Path

import pytest

pytest.importorskip("vizdoom")
pytest.importorskip("gymnasium")

from mlrepro.cli import main
from mlrepro.engine import RunDir
from mlrepro.runner import run_experiment

TINY = {"epochs": 2, "steps_per_epoch": 60, "test_episodes": 3, "replay_capacity": 200, "n_envs": 1,
            "async_envs": False, "target_update_steps": 20}


def test_killed_run_resumes_to_the_same_history_and_plays_a_gif(tmp_path, monkeypatch, capsys):
    _, full = run_experiment("dqn-vizdoom-basic", overrides=TINY, out=tmp_path / "a", device="cpu",
                             verbose=False)

    save = RunDir.save_checkpoint

    def save_then_die(self, state, stage=None, **kw):
        save(self, state, stage, **kw)
        raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(RunDir, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_experiment("dqn-vizdoom-basic", overrides=TINY, out=tmp_path / "b", device="cpu",
                       verbose=False)
    monkeypatch.setattr(RunDir, "save_checkpoint", save)
    run_dir = next((tmp_path / "b" / "dqn-vizdoom-basic").iterdir())
    assert [r["epoch"] for r in RunDir(run_dir).history()] == [1]
    _, resumed = run_experiment(resume=str(run_dir), device="cpu", verbose=False)

    full_rows = RunDir(next((tmp_path / "a" / "dqn-vizdoom-basic").iterdir())).history()
    rows = RunDir(run_dir).history()
    assert [r["epoch"] for r in rows] == [1, 2]
    for a, b in zip(full_rows, rows):
        for key in ("test_score_mean", "train_score_mean", "loss", "updates", "epsilon"):
            assert a[key] == b[key], key
    assert resumed["test_score"] == full["test_score"]
    assert (run_dir / "plots" / "learning_curve.png").exists()
    assert not list(Path.cwd().glob("_vizdoom*"))

    gif = tmp_path / "agent.gif"
    assert main(["play", str(run_dir), "--episodes", "2", "--gif", str(gif)]) == 0
    out = capsys.readouterr().out
    assert "mean score:" in out and "over 2 episodes" in out
    assert gif.read_bytes()[:6] == b"GIF89a"


def test_random_policy_preset_writes_one_history_row(tmp_path):
    run_dir, metrics = run_experiment("dqn-vizdoom-basic", preset="random",
                                      overrides={"test_episodes": 4}, out=tmp_path, device="cpu",
                                      verbose=False)
    rows = run_dir.history()
    assert len(rows) == 1 and rows[0]["test_episodes"] == 4
    assert -400 < metrics["test_score"] < 100
    assert json.loads((run_dir.path / "config.json").read_text())["config"]["random_policy"]


def test_play_refuses_what_it_cannot_play(tmp_path, capsys):
    assert main(["play", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, message", [("--n-step", "0", "--n-step must be >= 1"),
                                                    ("--test-epsilon", "1.5", "--test-epsilon must be >= 0 and <= 1")])
def test_bad_option_values_are_one_line_errors(tmp_path, capsys, option, value, message):
    assert main(["run", "dqn-vizdoom-basic", option, value, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # nothing written
