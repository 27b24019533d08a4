"""dqn-vizdoom on the real environment: resume, play → GIF, scenarios, the random baseline."""

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("vizdoom")
pytest.importorskip("gymnasium")

from mlrepro.cli import main
from mlrepro.engine import RunDir
from mlrepro.runner import run_experiment

TINY = {
    "epochs": 2,
    "steps_per_epoch": 60,
    "test_episodes": 3,
    "replay_capacity": 200,
    "n_envs": 1,
    "async_envs": False,
    "target_update_steps": 20,
}


def test_killed_run_resumes_to_the_same_history_and_plays_a_gif(tmp_path, monkeypatch, capsys):
    _, full = run_experiment(
        "dqn-vizdoom-basic", overrides=TINY, out=tmp_path / "a", device="cpu", verbose=False
    )

    save = RunDir.save_checkpoint

    def save_then_die(self, state, stage=None, **kw):
        save(self, state, stage, **kw)
        raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(RunDir, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(
            "dqn-vizdoom-basic", overrides=TINY, out=tmp_path / "b", device="cpu", verbose=False
        )
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
    # what the greedy policy did: each action's share of the steps (basic's 8 "all" actions)
    actions = out.splitlines()[2]
    assert actions.startswith("actions: ") and " steps per episode" in actions
    shares = [
        int(part.rsplit(" ", 1)[1].rstrip("%")) for part in actions[9:].split(";")[0].split(", ")
    ]
    assert abs(sum(shares) - 100) <= len(shares) and shares == sorted(shares, reverse=True)
    assert gif.read_bytes()[:6] == b"GIF89a"
    # without a GIF the episodes step with make_action, not tic by tic: the same scores
    assert main(["play", str(run_dir), "--episodes", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == out.splitlines()[0]


def test_random_policy_preset_writes_one_history_row(tmp_path):
    run_dir, metrics = run_experiment(
        "dqn-vizdoom-basic",
        preset="random",
        overrides={"test_episodes": 4},
        out=tmp_path,
        device="cpu",
        verbose=False,
    )
    rows = run_dir.history()
    assert len(rows) == 1 and rows[0]["test_episodes"] == 4
    assert -400 < metrics["test_score"] < 100
    assert json.loads((run_dir.path / "config.json").read_text())["config"]["random_policy"]


def test_play_refuses_what_it_cannot_play(tmp_path, capsys):
    assert main(["play", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--n-step", "0", "--n-step must be >= 1"),
        ("--test-epsilon", "1.5", "--test-epsilon must be >= 0 and <= 1"),
    ],
)
def test_bad_option_values_are_one_line_errors(tmp_path, capsys, option, value, message):
    assert main(["run", "dqn-vizdoom-basic", option, value, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # nothing written


# --- dqn-vizdoom: any scenario, judged against random play ---


def test_unknown_scenario_is_one_line_listing_only_scenarios_and_writes_nothing(tmp_path, capsys):
    assert main(["run", "dqn-vizdoom", "--scenario", "no_such_name", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown ViZDoom scenario 'no_such_name'" in err
    assert "defend_the_line" in err and "freedoom1" not in err and "learning" not in err
    assert not list(tmp_path.iterdir())
    assert (
        main(
            ["run", "dqn-vizdoom", "--scenario", "doom2", "--seeds", "0,1", "--out", str(tmp_path)]
        )
        == 2
    )  # a shipped .cfg that is no scenario; a sweep
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_random_baseline_plays_the_agents_environments_and_actions(tmp_path, monkeypatch):
    from mlrepro.rl import train
    from mlrepro.rl.env import action_table
    from mlrepro.runner import run_seeds

    calls = []
    evaluate = train.evaluate

    def spy(policy, envs, episodes, **kw):
        actions = []

        def recorded(obs):
            a = policy(obs)
            actions.extend(int(x) for x in a)
            return a

        scores = evaluate(recorded, envs, episodes, **kw)
        env = envs.envs[0]
        calls.append(
            {
                "envs": envs,
                "frame_repeat": env.frame_repeat,
                "table": env.actions.tolist(),
                "actions": actions,
                "seed": kw["seed"],
                "episodes": episodes,
            }
        )
        return scores

    monkeypatch.setattr(train, "evaluate", spy)
    summary, _ = run_seeds(
        "dqn-vizdoom",
        [0],
        preset="quick",
        out=tmp_path,
        verbose=False,
        overrides={"scenario": "defend_the_center", "frame_repeat": 3, "async_envs": False},
        results_dir=tmp_path / "results",
    )
    # with a results folder run_seeds returns the results file's path
    assert summary == tmp_path / "results" / "dqn-vizdoom.defend_the_center.quick.json"
    (folder,) = (tmp_path / "dqn-vizdoom").glob("sweep-*")
    *_, last_test, rand = calls
    assert rand["envs"] is last_test["envs"] and rand["seed"] == last_test["seed"]
    assert rand["frame_repeat"] == 3 and rand["table"] == last_test["table"]
    assert rand["table"] == action_table(["TURN_LEFT", "TURN_RIGHT", "ATTACK"], "combos").tolist()
    assert set(rand["actions"]) == set(range(6))  # uniform over the agent's 6 actions
    assert rand["episodes"] == last_test["episodes"] == 3
    metrics = json.loads((folder / "s0" / "metrics.json").read_text())
    for key in (
        "test_score",
        "test_score_se",
        "random_score",
        "random_score_se",
        "beats_random_by_se",
    ):
        assert key in metrics, key
    assert metrics["n_actions"] == 6
    # the scenario names the sweep folder (runs/dqn-vizdoom/sweep-SCENARIO-...)
    assert folder.parent == tmp_path / "dqn-vizdoom"
    assert folder.name.startswith("sweep-defend_the_center-quick-")
    # ... and its results file, so that one experiment's scenarios never replace each other's
    assert [p.name for p in (tmp_path / "results").iterdir()] == [summary.name]
    assert json.loads(summary.read_text())["tag"] == "defend_the_center"


def test_run_folders_are_named_by_scenario_and_the_old_experiments_keep_theirs(tmp_path):
    from mlrepro.experiments import get_experiment

    exp = get_experiment("dqn-vizdoom")
    assert exp.folder_tag(exp.make_config(None, {"scenario": "my_way_home"})) == "my_way_home"
    assert exp.folder_tag(exp.make_config(None, {"scenario": "basic"})) == "basic"
    assert get_experiment("dqn-vizdoom-basic").folder_tag is None
    assert get_experiment("dqn-vizdoom-defend").folder_tag is None


def test_the_old_experiments_keep_the_settings_behind_their_results():
    from mlrepro.experiments import get_experiment

    basic = get_experiment("dqn-vizdoom-basic").make_config()
    # results/dqn-vizdoom-basic.json was measured with these (and no random baseline, which only
    # adds a metric after the last test)
    committed = json.loads(
        (Path(__file__).parents[2] / "results" / "dqn-vizdoom-basic.json").read_text()
    )["config"]
    saved = {k: v for k, v in committed.items()}
    now = {k: v for k, v in json.loads(json.dumps(basic.__dict__)).items() if k in saved}
    assert now == saved
    defend = get_experiment("dqn-vizdoom-defend").make_config()
    committed = json.loads(
        (Path(__file__).parents[2] / "results" / "dqn-vizdoom-defend.json").read_text()
    )["config"]
    assert {
        k: v for k, v in json.loads(json.dumps(defend.__dict__)).items() if k in committed
    } == committed
    for cfg in (basic, defend):
        assert (
            cfg.actions,
            cfg.frame_stack,
            cfg.reward_norm,
            cfg.seed_episodes,
            cfg.last_test_episodes,
        ) == ("all", 1, "none", False, cfg.test_episodes)


def test_keep_best_gives_the_final_test_to_the_best_epochs_weights_on_fresh_seeds(
    tmp_path, monkeypatch
):
    from mlrepro.experiments.dqn_vizdoom import _env_seed
    from mlrepro.rl import train

    # Epoch 2's own test scores best (the scores of the epochs' tests are set here by their seeds);
    # its weights must play the final test, on seeds that no epoch played, beside the random
    # baseline on those same seeds, and be the finished run's model.
    epoch_seeds = {_env_seed(0, e, True, spaced=True): e + 1 for e in range(3)}
    set_scores = {1: 5.0, 2: 9.0, 3: 1.0}
    agents = []
    calls = []
    greedy, evaluate = train.greedy_policy, train.evaluate

    def spy_greedy(agent, epsilon=0.0):
        agents.append(agent)
        return greedy(agent, epsilon)

    def spy_evaluate(policy, envs, episodes, **kw):
        weights = [p.detach().clone() for p in agents[-1].q.parameters()] if agents else None
        scores = evaluate(policy, envs, episodes, **kw)
        calls.append({"seed": kw["seed"], "episodes": episodes, "weights": weights})
        epoch = epoch_seeds.get(kw["seed"])
        return [set_scores[epoch]] * episodes if epoch is not None else scores

    monkeypatch.setattr(train, "greedy_policy", spy_greedy)
    monkeypatch.setattr(train, "evaluate", spy_evaluate)
    overrides = {
        **TINY,
        "epochs": 3,
        "learning_starts": 32,  # so that every epoch changes the weights
        "final_test_episodes": 4,
        "keep_best": True,
    }
    run_dir, metrics = run_experiment(
        "dqn-vizdoom", overrides=overrides, out=tmp_path, device="cpu", verbose=False
    )
    *tests, final, rand = calls
    assert [epoch_seeds.get(c["seed"]) for c in tests] == [1, 2, 3]
    assert [c["episodes"] for c in tests] == [3, 3, 3] and final["episodes"] == 4
    assert final["seed"] not in epoch_seeds and rand["seed"] == final["seed"]
    assert final["seed"] not in {_env_seed(0, e, False, spaced=True) for e in range(3)}
    same = [all(torch.equal(a, b) for a, b in zip(final["weights"], t["weights"])) for t in tests]
    assert same == [False, True, False]

    last = run_dir.history()[-1]
    assert last["selected_epoch"] == metrics["selected_epoch"] == 2
    assert last["test_score_mean"] == 1.0  # the last epoch's own test stays on its curve
    assert metrics["test_score"] == last["final_score_mean"] != 9.0
    assert metrics["random_score"] == last["random_score_mean"]
    saved = run_dir.load_checkpoint()
    assert saved["best"] is None  # the finished model is the selected one
    assert all(
        torch.equal(saved["agent"]["q"][k], v)
        for k, v in zip(saved["agent"]["q"], final["weights"])
    )

    # killed after epoch 2 and resumed: the best weights come back from the checkpoint
    save = RunDir.save_checkpoint

    def save_then_die(self, state, stage=None, **kw):
        save(self, state, stage, **kw)
        if state["epoch"] == 2:
            assert state["best"]["epoch"] == 2
            raise KeyboardInterrupt

    monkeypatch.setattr(RunDir, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(
            "dqn-vizdoom", overrides=overrides, out=tmp_path / "b", device="cpu", verbose=False
        )
    monkeypatch.setattr(RunDir, "save_checkpoint", save)
    killed = next((tmp_path / "b" / "dqn-vizdoom").iterdir())
    _, resumed = run_experiment(resume=str(killed), device="cpu", verbose=False)
    assert resumed["selected_epoch"] == 2
    assert resumed["test_score"] == metrics["test_score"]


def test_the_dead_units_diagnostic_finds_a_dead_first_layer(tmp_path):
    import subprocess
    import sys

    run_dir, _ = run_experiment(
        "dqn-vizdoom",
        overrides={**TINY, "final_test_episodes": 2, "random_baseline": False},
        out=tmp_path,
        device="cpu",
        verbose=False,
    )
    script = Path(__file__).parents[2] / "benchmarks" / "dqn_dead_units.py"

    def diagnose() -> str:
        out = subprocess.run(
            [sys.executable, str(script), str(run_dir.path), "--episodes", "2"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.splitlines()[-1]

    line = diagnose()
    assert "epoch 2: alive features.1 " in line and "features.1 0/8" not in line
    state = torch.load(run_dir.path / "checkpoint.pt", weights_only=True)
    state["agent"]["q"]["features.0.bias"].fill_(-100.0)  # every first-layer filter dead
    torch.save(state, run_dir.path / "checkpoint.pt")
    line = diagnose()
    assert "features.1 0/8" in line and "Q spread over frames 0.000" in line
    bad = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True
    )
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1
    assert "is not a run folder" in bad.stderr
