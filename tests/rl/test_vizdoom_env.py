"""The ViZDoom wrapper on the real "basic" scenario: gymnasium API, spaces, frame repeat, files."""

import os

import numpy as np
import pytest

pytest.importorskip("vizdoom")
pytest.importorskip("gymnasium")

import gymnasium
from gymnasium.utils.env_checker import check_env

from mlrepro.rl.env import ENV_ID, DoomEnv, action_table, make_vector_env, scenario_config


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
    with pytest.raises(ValueError, match="unknown ViZDoom scenario 'nope'; shipped: .*basic"):
        scenario_config("nope")
    assert action_table(2).tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    with pytest.raises(ValueError, match="actions"):
        action_table(2, "some")
