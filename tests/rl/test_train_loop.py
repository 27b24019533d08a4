"""The epoch halves on a tiny stand-in vector environment: transitions, updates, test quotas."""

import numpy as np
import pytest
import torch

gym = pytest.importorskip("gymnasium")

from gymnasium.vector import AutoresetMode, SyncVectorEnv

from mlrepro.rl import DQN, QNet, ReplayMemory
from mlrepro.rl.train import evaluate, finished_episodes, learning_steps, random_policy


class Countdown(gym.Env):
    """Episodes of `length` steps, reward 1 per step, observation = steps taken (a grey level)."""

    def __init__(self, length):
        self.length = length
        self.observation_space = gym.spaces.Box(0, 255, (1, 30, 45), np.uint8)
        self.action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros((1, 30, 45), np.uint8), {}

    def step(self, action):
        self.t += 1
        done = self.t == self.length
        info = {"episode": {"r": float(self.t), "l": self.t}} if done else {}
        return np.full((1, 30, 45), self.t, np.uint8), 1.0, done, False, info


def envs(*lengths):
    return SyncVectorEnv(
        [lambda n=n: Countdown(n) for n in lengths], autoreset_mode=AutoresetMode.SAME_STEP
    )


def test_evaluate_gives_each_environment_its_quota_not_the_first_to_finish():
    # Env 0 finishes every step, env 1 every 5 steps; "first 10 to finish" would be 9 short ones.
    scores = evaluate(random_policy(3, 0), envs(1, 5), 10)
    assert sorted(scores) == [1.0] * 5 + [5.0] * 5


def test_learning_steps_stores_every_transition_and_makes_the_requested_updates():
    torch.manual_seed(0)
    agent = DQN(QNet(3), lr=1e-3, generator=torch.Generator().manual_seed(0))
    memory = ReplayMemory(100, (1, 30, 45))
    out = learning_steps(
        agent,
        envs(3, 4),
        memory,
        24,
        epsilon_at=lambda k: 1.0,
        batch_size=4,
        learning_starts=8,
        updates_per_step=0.5,
    )
    assert out["steps"] == 24 and len(memory) == 24
    assert out["updates"] == (24 - 8) // 2 + 1  # learning starts once 8 transitions are stored
    assert sorted(out["scores"]) == [3.0] * 4 + [4.0] * 3 and out["loss"] > 0
    # done marks the last step of each episode; s2 of a done step is never bootstrapped
    done = memory.done[:24].view(12, 2)
    assert done[:, 0].tolist() == [0, 0, 1] * 4 and done[:, 1].tolist() == [0, 0, 0, 1] * 3
    assert memory.s1[2, 0, 0, 0] == 1 and memory.s2[2, 0, 0, 0] == 2  # env 0, step 2 → 3


def test_finished_episodes_reads_same_step_autoreset_info():
    info = {
        "final_info": {
            "episode": {"r": np.array([0.0, 7.0]), "l": np.array([0, 3])},
            "_episode": np.array([False, True]),
        }
    }
    assert finished_episodes(info) == [(1, 7.0, 3)]
    assert finished_episodes({}) == []


@pytest.mark.parametrize("n", [1, 2])
def test_random_policy_shapes(n):
    assert random_policy(4, 0)(np.zeros((n, 1, 30, 45))).shape == (n,)
