"""The ViZDoom wrapper on the real "basic" scenario: gymnasium API, spaces, frame repeat, files."""

import os

import numpy as np
import pytest

pytest.importorskip("vizdoom")
pytest.importorskip("gymnasium")

import gymnasium
from gymnasium.utils.env_checker import check_env

from mlrepro.experiments.dqn_vizdoom import DEVELOPMENT_SET
from mlrepro.rl.env import (
    ENV_ID,
    OPPOSITES,
    SCENARIOS_PATH,
    DoomEnv,
    action_table,
    make_vector_env,
    scenario_config,
)
from mlrepro.rl.scenarios import scenario_names


@pytest.fixture
def in_tmp_cwd(tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_reset_step_shapes_spaces_and_no_files_in_the_working_directory(in_tmp_cwd, tmp_path):
    env = DoomEnv("basic", work_dir=tmp_path / "vz")
    try:
        assert env.action_space.n == 8 and env.buttons == ["MOVE_LEFT", "MOVE_RIGHT", "ATTACK"]
        assert env.observation_space.shape == (1, 30, 45)
        assert env.observation_space.dtype == np.uint8
        obs, _ = env.reset(seed=0)
        assert obs.shape == (1, 30, 45) and obs.dtype == np.uint8 and obs.std() > 0
        assert env.observation_space.contains(obs)
        obs, reward, terminated, truncated, _ = env.step(0)  # no button: 12 tics of -1
        assert reward == -12.0 and not terminated and not truncated
    finally:
        env.close()
    assert os.listdir(in_tmp_cwd) == []  # no _vizdoom.ini or _vizdoom/ here
    assert (tmp_path / "vz" / "_vizdoom.ini").exists() and (tmp_path / "vz" / "_vizdoom").is_dir()


def test_frame_repeat_sets_the_episode_length_and_timeouts_truncate(in_tmp_cwd):
    # basic times out after 300 tics: 25 steps of 12 tics, or 100 steps of 3.
    for repeat, steps in [(12, 25), (3, 100)]:
        env = DoomEnv("basic", frame_repeat=repeat)
        env.reset(seed=1)
        n, done, total = 0, False, 0.0
        while not done:
            _, r, terminated, truncated, info = env.step(0)
            n, total, done = n + 1, total + r, terminated or truncated
        env.close()
        assert n == steps and truncated and not terminated
        assert info["episode"] == {"r": total, "l": steps} and total == -300.0
    assert os.listdir(in_tmp_cwd) == []


def test_resolution_frame_stack_and_single_actions(in_tmp_cwd):
    env = DoomEnv("basic", resolution=(20, 24), frame_stack=3, actions="single")
    try:
        assert env.action_space.n == 3
        obs, _ = env.reset(seed=0)
        assert obs.shape == (3, 20, 24) and (obs[0] == obs[2]).all()  # a fresh stack repeats
        obs2, *_ = env.step(1)  # move right: the newest frame changes, the stack shifts
        assert (obs2[:2] == obs[1:]).all() and not (obs2[2] == obs[2]).all()
    finally:
        env.close()


def test_same_seed_same_episode(in_tmp_cwd):
    env = DoomEnv("basic")
    try:
        runs = []
        for _ in range(2):
            frames = [env.reset(seed=7)[0]]
            frames += [env.step(a)[0] for a in (1, 1, 2)]
            runs.append(np.stack(frames))
        assert (runs[0] == runs[1]).all()
    finally:
        env.close()


def test_gymnasium_make_and_env_checker(in_tmp_cwd):
    env = gymnasium.make(ENV_ID, scenario="basic", render_mode="rgb_array")
    try:
        check_env(env.unwrapped, skip_render_check=False)
        env.reset(seed=0)
        env.step(2)
        frame = env.render()
        assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
    finally:
        env.close()


def test_vector_env_resets_in_the_same_step_and_reports_returns(in_tmp_cwd, tmp_path):
    envs = make_vector_env(2, work_dir=tmp_path / "vz")
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, 1, 30, 45)
        for _ in range(25):  # idle until both time out at the same step
            obs, _, _, truncated, info = envs.step(np.zeros(2, dtype=np.int64))
        assert truncated.all() and info["final_info"]["episode"]["r"].tolist() == [-300.0, -300.0]
    finally:
        envs.close()
    assert sorted(os.listdir(tmp_path / "vz")) == ["env0", "env1"]
    assert os.listdir(in_tmp_cwd) == []


def test_helpers_name_what_is_wrong():
    assert scenario_config("defend_the_center").name == "defend_the_center.cfg"
    with pytest.raises(ValueError, match="unknown ViZDoom scenario 'nope'; scenarios: basic, "):
        scenario_config("nope")
    with pytest.raises(ValueError, match="does not exist"):
        scenario_config("no/such/file.cfg")
    assert action_table(2).tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    with pytest.raises(ValueError, match="actions"):
        action_table(2, "some")


def test_only_shipped_configs_that_define_a_scenario_are_scenarios():
    names = scenario_names()
    assert set(DEVELOPMENT_SET) <= set(names)
    # games, example configs reusing another map, multiplayer maps without rewards
    for other in (
        "doom",
        "doom2",
        "freedoom1",
        "freedoom2",
        "learning",
        "multi",
        "oblige",
        "cig",
        "multi_duel",
    ):
        assert (SCENARIOS_PATH / f"{other}.cfg").exists() and other not in names
    with pytest.raises(ValueError) as e:
        scenario_config("doom")
    assert str(e.value).count("\n") == 0 and "freedoom1" not in str(e.value)
    assert ", ".join(names) in str(e.value)


BASIC = ["MOVE_LEFT", "MOVE_RIGHT", "ATTACK"]
CORRIDOR = [
    "MOVE_LEFT",
    "MOVE_RIGHT",
    "ATTACK",
    "MOVE_FORWARD",
    "MOVE_BACKWARD",
    "TURN_LEFT",
    "TURN_RIGHT",
]


def contradictory(table, buttons):
    index = {b: i for i, b in enumerate(buttons)}
    return [
        row.tolist()
        for row in table
        for a, b in OPPOSITES
        if a in index and b in index and row[index[a]] and row[index[b]]
    ]


def test_combos_are_every_combination_without_contradictory_pairs():
    table = action_table(BASIC, "combos")
    assert table.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], [1, 0, 0], [1, 0, 1]]
    corridor = action_table(CORRIDOR, "combos")
    assert len(corridor) == 3 * 2 * 3 * 3 and not contradictory(corridor, CORRIDOR)
    assert len({tuple(r) for r in corridor.tolist()}) == len(corridor)
    assert len(action_table(CORRIDOR, "combos", max_pressed=2)) == 1 + 7 + 18
    assert contradictory(action_table(BASIC, "all"), BASIC) == [[1, 1, 0], [1, 1, 1]]
    # analog buttons are never pressed
    assert action_table(["ATTACK", "TURN_LEFT_RIGHT_DELTA"], "combos").tolist() == [[0, 0], [1, 0]]


@pytest.mark.parametrize("scenario", DEVELOPMENT_SET)
def test_no_development_scenario_gets_contradictory_actions(in_tmp_cwd, scenario):
    env = DoomEnv(scenario, actions="combos")
    try:
        assert not contradictory(env.actions, env.buttons)
        assert env.actions[0].sum() == 0
        assert env.action_space.n == len(env.actions) > len(env.buttons)
    finally:
        env.close()


def first_frames(env, seed, actions):
    """The first frame of each of three episodes from reset(seed), each played with `actions`."""
    frames = [env.reset(seed=seed)[0]]
    for _ in range(2):
        done, k = False, 0
        while not done:
            _, _, terminated, truncated, _ = env.step(actions[k % len(actions)])
            done, k = terminated or truncated, k + 1
        frames.append(env.reset()[0])
    return np.stack(frames)


def test_seeded_episodes_meet_the_same_draws_whatever_the_policy(in_tmp_cwd):
    env = DoomEnv("basic", frame_repeat=12, seed_episodes=True)
    try:
        idle = first_frames(env, 11, [0])  # times out
        busy = first_frames(env, 11, [1, 4, 3, 5, 2])  # moves and fires
        assert (idle == busy).all()
        assert not (idle[1] == idle[2]).all()  # the next seed is another draw
        assert (first_frames(env, 12, [0])[0] == idle[1]).all()  # episode k of seed s is seed s + k
    finally:
        env.close()


def test_costs_charge_rounds_fired_and_health_lost_but_leave_the_score_alone(in_tmp_cwd):
    import vizdoom as vzd

    costs = {"AMMO": 0.1, "HEALTH": 0.01}
    plain = DoomEnv("defend_the_center", frame_repeat=6, actions="combos")
    shaped = DoomEnv("defend_the_center", frame_repeat=6, actions="combos", costs=costs)
    try:
        fire = [list(a) for a in shaped.actions].index([0, 0, 1])
        rng = np.random.default_rng(0)
        plain.reset(seed=3)
        shaped.reset(seed=3)
        g = shaped.game
        charged = 0.0
        done = False
        while not done:
            a = fire if rng.random() < 0.7 else int(rng.integers(shaped.action_space.n))
            ammo = g.get_game_variable(vzd.GameVariable.AMMO2)
            health = g.get_game_variable(vzd.GameVariable.HEALTH)
            _, r0, *_ = plain.step(a)
            _, r1, terminated, truncated, info = shaped.step(a)
            done = terminated or truncated
            if not done:  # the last step is not charged
                spent = ammo - g.get_game_variable(vzd.GameVariable.AMMO2)
                lost = max(0.0, health - g.get_game_variable(vzd.GameVariable.HEALTH))
                assert r1 == pytest.approx(r0 - 0.1 * spent - 0.01 * lost)
                charged += r0 - r1
        assert charged >= 0.1 * 20  # it fired most of its 26 rounds and was hurt
        assert info["episode"]["r"] == plain.game.get_total_reward()  # the scenario's own score
    finally:
        plain.close()
        shaped.close()


def test_ammunition_is_charged_once_per_round_and_not_across_a_weapon_change():
    from mlrepro.rl.env import _drop

    # pistol (slot 2) and chaingun (slot 4) show the same rounds: a sum would charge twice
    assert _drop((2.0, 26.0), (2.0, 25.0)) == 1.0
    assert _drop((2.0, 25.0), (2.0, 30.0)) == 0.0  # picked up: no reward, no cost
    assert _drop((2.0, 50.0), (3.0, 8.0)) == 0.0  # another weapon's count


@pytest.mark.parametrize(
    ("costs", "message"),
    [({"NO_SUCH": 1.0}, "unknown game variable 'NO_SUCH'"), ({"AMMO": -1.0}, "negative weight")],
)
def test_bad_costs_name_what_is_wrong(in_tmp_cwd, costs, message):
    with pytest.raises(ValueError, match=message):
        DoomEnv("basic", costs=costs)
