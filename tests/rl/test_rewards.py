"""Reward normalisation on synthetic rewards: σ of the discounted return, floor, freezing, clip."""

import numpy as np
import pytest

from mlrepro.rl.rewards import RewardNorm


def discounted_returns(rewards, dones, gamma):
    """G_t = γ G_{t−1} + r_t per environment, restarting after each episode end: (T, N)."""
    g, out = np.zeros(rewards.shape[1]), []
    for r, d in zip(rewards, dones):
        g = gamma * g + r
        out.append(g.copy())
        g[d] = 0.0
    return np.array(out)


def feed(norm, rewards, dones):
    for r, d in zip(rewards, dones):
        norm.observe(r, d)


def synthetic(steps=400, n_envs=3, size=1.0, seed=0):
    rng = np.random.default_rng(seed)
    rewards = size * rng.normal(size=(steps, n_envs))
    dones = rng.random((steps, n_envs)) < 0.05
    return rewards, dones


def test_sigma_is_the_std_of_the_discounted_returns_of_every_environment():
    rewards, dones = synthetic(size=30.0)
    norm = RewardNorm("returns", 3, 0.9, freeze_after=10**9)
    feed(norm, rewards, dones)
    expected = discounted_returns(rewards, dones, 0.9).ravel().std(ddof=1)
    assert norm.std == pytest.approx(expected, rel=1e-9)
    assert norm.scale == pytest.approx(1 / expected)


def test_rewards_kind_divides_by_the_std_of_the_rewards():
    rewards, dones = synthetic(size=30.0)
    norm = RewardNorm("rewards", 3, 0.9, freeze_after=10**9)
    feed(norm, rewards, dones)
    assert norm.std == pytest.approx(rewards.ravel().std(ddof=1), rel=1e-9)
    assert norm.scale == pytest.approx(1 / norm.std)
    # per-step σ is far below the return's where rewards come every step
    returns = RewardNorm("returns", 3, 0.99, freeze_after=10**9)
    feed(returns, rewards + 30.0, dones)
    steps = RewardNorm("rewards", 3, 0.99, freeze_after=10**9)
    feed(steps, rewards + 30.0, dones)
    assert returns.std > 3 * steps.std


@pytest.mark.parametrize("kind", ["returns", "rewards"])
def test_scale_follows_the_reward_size_but_never_amplifies(kind):
    rewards, dones = synthetic()
    scales = {}
    for size in (0.01, 1.0, 100.0, 10_000.0):
        norm = RewardNorm(kind, 3, 0.99, freeze_after=10**9)
        feed(norm, size * rewards, dones)
        scales[size] = norm.scale
    assert scales[0.01] == 1.0  # ±0.01 rewards stay as they are (σ < 1)
    # the same units after scaling
    assert scales[100.0] * 100 == pytest.approx(scales[10_000.0] * 10_000)
    assert scales[100.0] < 1 and scales[1.0] <= 1


def test_sigma_is_frozen_after_the_exploration_steps():
    rewards, dones = synthetic(n_envs=2)
    norm = RewardNorm("returns", 2, 0.99, freeze_after=200)  # counts environment steps
    feed(norm, rewards[:100], dones[:100])
    frozen = norm.std
    assert norm.frozen and norm.count == 200
    feed(norm, 1000 * rewards[100:], dones[100:])  # the policy's rewards change: σ does not
    assert norm.std == frozen


def test_clip_stores_clipped_rewards_and_none_leaves_them():
    r = np.array([-250.0, -0.5, 0.0, 3.0])
    clip = RewardNorm("clip", 4, 0.99, scale=0.5)
    assert clip.observe(r, np.zeros(4, bool)).tolist() == [-1.0, -0.5, 0.0, 1.0]
    assert clip.scale == 0.5
    none = RewardNorm("none", 4, 0.99, scale=0.01)
    assert none.observe(r, np.zeros(4, bool)).tolist() == r.tolist() and none.scale == 0.01


def test_state_dict_resumes_the_same_statistics():
    rewards, dones = synthetic(size=50.0)
    a = RewardNorm("returns", 3, 0.99, freeze_after=10**9)
    feed(a, rewards, dones)
    b = RewardNorm("returns", 3, 0.99, freeze_after=10**9)
    feed(b, rewards[:150], dones[:150])
    c = RewardNorm("returns", 3, 0.99, freeze_after=10**9)
    c.load_state_dict(b.state_dict())
    feed(c, rewards[150:], dones[150:])
    assert c.std == pytest.approx(a.std, rel=1e-12)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="returns, rewards, clip, none"):
        RewardNorm("popart", 1, 0.99)
    with pytest.raises(ValueError, match="floor"):
        RewardNorm("returns", 1, 0.99, floor=0)
