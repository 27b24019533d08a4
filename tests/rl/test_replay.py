"""Replay memory: uint8 storage, ring-buffer wraparound, sampling returns stored transitions."""

import numpy as np
import pytest
import torch

from mlrepro.rl import NStepTransitions, ReplayMemory


def frames(ids, shape=(1, 3, 4)):
    """Observation i is filled with the value i, so a sampled frame names its transition."""
    return torch.tensor(ids, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, *shape).clone()


def fill(memory, ids):
    ids = list(ids)
    memory.add(
        frames(ids),
        torch.tensor(ids) % 3,
        torch.tensor(ids, dtype=torch.float32),
        frames([i + 100 for i in ids]),
        torch.tensor([i % 2 for i in ids]),
    )


def test_frames_are_stored_as_uint8_and_sampled_as_floats_in_unit_range():
    m = ReplayMemory(10, (1, 3, 4))
    assert m.s1.dtype == m.s2.dtype == torch.uint8 and m.s1.shape == (10, 1, 3, 4)
    fill(m, range(5))
    s1, a, *_ = m.sample(32)
    assert s1.dtype == torch.float32 and s1.shape == (32, 1, 3, 4)
    assert s1.min() >= 0 and s1.max() <= 1 and a.dtype == torch.long
    assert len(m) == 5


def test_capacity_wraps_around_and_overwrites_the_oldest():
    m = ReplayMemory(5, (1, 3, 4))
    fill(m, range(3))
    fill(m, range(3, 7))  # 7 transitions into 5 slots: 0 and 1 are gone
    assert len(m) == 5 and m.pos == 2
    assert sorted(m.s1[:, 0, 0, 0].tolist()) == [2, 3, 4, 5, 6]
    assert m.s1[0, 0, 0, 0] == 5 and m.s1[1, 0, 0, 0] == 6  # written to slots 0, 1


def test_samples_are_stored_transitions_with_fields_kept_together():
    m = ReplayMemory(50, (1, 3, 4), generator=torch.Generator().manual_seed(0))
    fill(m, range(20))
    s1, a, r, s2, done = m.sample(256)
    ids = (s1[:, 0, 0, 0] * 255).round().long()
    assert set(ids.tolist()) <= set(range(20)) and len(set(ids.tolist())) > 15  # uniform-ish
    assert torch.equal(r, ids.float()) and torch.equal(a, ids % 3)
    assert torch.equal((s2[:, 0, 0, 0] * 255).round().long(), ids + 100)
    assert torch.equal(done, (ids % 2).float())
    assert torch.equal(s1[:, 0], s1[:, 0, :1, :1].expand(-1, 3, 4))  # whole frames, not mixed


def test_sampling_is_one_vectorised_gather(monkeypatch):
    # No Python per-item work: a batch of 4096 indices is drawn and gathered in well under 50 ms.
    import time

    m = ReplayMemory(10_000, (1, 30, 45))
    m.add(
        torch.zeros(10_000, 1, 30, 45, dtype=torch.uint8),
        torch.zeros(10_000, dtype=torch.long),
        torch.zeros(10_000),
        torch.zeros(10_000, 1, 30, 45, dtype=torch.uint8),
        torch.zeros(10_000),
    )
    calls = []
    real = torch.randint
    monkeypatch.setattr(torch, "randint", lambda *a, **k: calls.append(a) or real(*a, **k))
    start = time.perf_counter()
    batch = m.sample(4096)
    assert time.perf_counter() - start < 0.5 and batch[0].shape[0] == 4096
    assert len(calls) == 1  # one call for the whole batch


def test_state_dict_round_trip_continues_identically():
    a = ReplayMemory(8, (1, 3, 4), generator=torch.Generator().manual_seed(1))
    fill(a, range(6))
    fill(a, range(6, 11))
    b = ReplayMemory(8, (1, 3, 4))
    b.load_state_dict(a.state_dict())
    assert (b.size, b.pos) == (a.size, a.pos)
    for x, y in zip(a.sample(16), b.sample(16)):
        assert torch.equal(x, y)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="capacity"):
        ReplayMemory(0, (1,))
    with pytest.raises(ValueError, match="empty"):
        ReplayMemory(4, (1, 3, 4)).sample(2)
    with pytest.raises(ValueError, match="capacity 4"):
        fill(ReplayMemory(4, (1, 3, 4)), range(5))


def test_n_step_transitions_sum_discounted_rewards_and_end_with_the_episode():
    obs = [np.full((2, 1, 1, 1), t, np.uint8) for t in range(6)]  # frame value = step number
    nstep = NStepTransitions(2, n=2, gamma=0.5)
    rewards = [[1, 10], [2, 20], [3, 30], [4, 40], [5, 50]]
    dones = [[0, 0], [0, 1], [0, 0], [1, 0], [0, 0]]  # env 1 ends at step 1, env 0 at step 3
    out = [
        nstep.add(
            obs[t],
            np.array([t, t]),
            np.array(rewards[t], np.float32),
            obs[t + 1],
            np.array(dones[t], bool),
        )
        for t in range(5)
    ]
    assert out[0] is None  # nothing has seen 2 steps yet
    s1, a, r, s2, done = out[1]  # env 0: step 0 complete; env 1: steps 0 and 1 end with the episode
    assert s1[:, 0, 0, 0].tolist() == [0, 0, 1] and a.tolist() == [0, 0, 1]
    assert r.tolist() == [1 + 0.5 * 2, 10 + 0.5 * 20, 20] and done.tolist() == [False, True, True]
    assert s2[:, 0, 0, 0].tolist() == [2, 2, 2]
    s1, a, r, s2, done = out[3]  # env 0 ends: steps 2 and 3 flushed; env 1: step 2 complete
    assert s1[:, 0, 0, 0].tolist() == [2, 3, 2] and r.tolist() == [3 + 0.5 * 4, 4, 30 + 0.5 * 40]
    assert done.tolist() == [True, True, False] and s2[:, 0, 0, 0].tolist() == [4, 4, 4]
    one = NStepTransitions(1, n=1, gamma=0.5).add(
        obs[0][:1], np.array([2]), np.array([7.0]), obs[1][:1], np.array([False])
    )
    assert one[2].tolist() == [7.0] and one[3][0, 0, 0, 0] == 1 and not one[4][0]
