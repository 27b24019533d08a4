"""DQN: TD targets against hand computations, the blog's loss, target-network sync, state."""

import copy

import pytest
import torch
from torch import nn

from mlrepro.rl import DQN, QNet, ReplayMemory, td_targets


def test_plain_target_is_reward_plus_discounted_max():
    r = torch.tensor([1.0, -2.0])
    done = torch.tensor([0.0, 1.0])
    q2 = torch.tensor([[0.5, 3.0, 1.0], [9.0, 9.0, 9.0]])
    y = td_targets(r, done, q2, q2, gamma=0.9, double=False)
    torch.testing.assert_close(y, torch.tensor([1.0 + 0.9 * 3.0, -2.0]))  # terminal: no bootstrap


def test_double_dqn_picks_with_online_and_evaluates_with_target():
    r = torch.tensor([0.0, 1.0, 2.0])
    done = torch.zeros(3)
    online = torch.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    target = torch.tensor([[10.0, 20.0, 30.0], [-1.0, 4.0, 8.0], [6.0, 6.0, 0.5]])
    y = td_targets(r, done, online, target, gamma=0.5, double=True)
    # argmax online: 1, 0, 2 → target values 20, -1, 0.5 (not target's own max 30, 8, 6)
    torch.testing.assert_close(y, torch.tensor([0.0 + 0.5 * 20, 1.0 + 0.5 * -1, 2.0 + 0.5 * 0.5]))
    plain = td_targets(r, done, online, target, gamma=0.5, double=False)
    torch.testing.assert_close(plain, torch.tensor([15.0, 5.0, 5.0]))


class Table(nn.Module):
    """Q-values read from a learnable table indexed by the first pixel (a tiny test network)."""

    def __init__(self, values):
        super().__init__()
        self.values = nn.Parameter(torch.tensor(values))
        self.n_actions = len(values[0])

    def forward(self, x):
        return self.values[(x[:, 0, 0, 0] * 255).round().long()]


def batch():
    s1 = torch.tensor([0.0, 1.0]).view(2, 1, 1, 1) / 255
    s2 = torch.tensor([1.0, 2.0]).view(2, 1, 1, 1) / 255
    return s1, torch.tensor([1, 0]), torch.tensor([1.0, 5.0]), s2, torch.tensor([0.0, 1.0])


def test_blog_loss_is_mse_over_all_outputs_with_targets_equal_except_taken_action():
    values = [[0.0, 1.0], [2.0, 3.0], [4.0, 6.0]]
    agent = DQN(Table(values), lr=0.0, gamma=0.5, loss="mse_all")
    loss = agent.update(batch())
    # The blog: target_q = q(s1) with target_q[i, a_i] = r_i + γ (1 - done_i) max q(s2_i)
    q1 = torch.tensor(values)[[0, 1]]
    target_q = q1.clone()
    target_q[0, 1] = 1.0 + 0.5 * 3.0
    target_q[1, 0] = 5.0
    torch.testing.assert_close(loss, nn.MSELoss()(q1, target_q))


def test_update_moves_q_towards_the_target_and_target_net_syncs():
    torch.manual_seed(0)
    agent = DQN(
        Table([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]),
        lr=0.1,
        optimizer="sgd",
        loss="mse",
        double=True,
        target_update_steps=3,
    )
    agent.update(batch())
    v = agent.q.values.detach()
    assert v[0, 1] > 0 and v[1, 0] > 0 and v[2].abs().sum() == 0
    assert agent.target.values.abs().sum() == 0  # not synced yet
    agent.update(batch())
    agent.update(batch())
    torch.testing.assert_close(agent.target.values, agent.q.values.detach())
    assert not agent.target.values.requires_grad


def test_act_is_greedy_at_zero_epsilon_and_uniform_at_one():
    agent = DQN(
        Table([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0]]),
        lr=0.0,
        generator=torch.Generator().manual_seed(0),
    )
    obs = torch.tensor([0, 1, 0], dtype=torch.uint8).view(3, 1, 1, 1)
    assert agent.act(obs, 0.0).tolist() == [1, 0, 1]
    many = agent.act(obs.repeat(400, 1, 1, 1), 1.0)
    assert set(many.tolist()) == {0, 1, 2}


def test_state_dict_round_trip_makes_identical_updates():
    def make():
        torch.manual_seed(0)
        return DQN(
            QNet(3, dueling=True),
            lr=1e-3,
            optimizer="adam",
            loss="huber",
            double=True,
            target_update_steps=2,
            grad_clip_norm=1.0,
            lr_decay_updates=4,
            lr_min_frac=0.1,
        )

    memory = ReplayMemory(100, (1, 30, 45), generator=torch.Generator().manual_seed(0))
    memory.add(
        torch.randint(0, 256, (50, 1, 30, 45), dtype=torch.uint8),
        torch.randint(0, 3, (50,)),
        torch.randn(50),
        torch.randint(0, 256, (50, 1, 30, 45), dtype=torch.uint8),
        torch.zeros(50),
    )
    a = make()
    a.learn(memory, 8, 3)
    b = make()
    b.load_state_dict(copy.deepcopy(a.state_dict()))  # as if through a file: no shared tensors
    state = memory.state_dict()
    la = a.learn(memory, 8, 3)
    memory.load_state_dict(state)
    lb = b.learn(memory, 8, 3)
    assert torch.equal(la, lb)
    for x, y in zip(a.q.parameters(), b.q.parameters()):
        assert torch.equal(x, y)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="target network"):
        DQN(QNet(2), lr=1e-3, double=True, target_update_steps=0)
    with pytest.raises(ValueError, match="loss"):
        DQN(QNet(2), lr=1e-3, loss="l1")
    with pytest.raises(ValueError, match="optimizer"):
        DQN(QNet(2), lr=1e-3, optimizer="rmsprop")


def test_cosine_learning_rate_ends_at_its_floor_and_stays():
    agent = DQN(
        Table([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]),
        lr=1.0,
        optimizer="adam",
        lr_decay_updates=4,
        lr_min_frac=0.1,
    )
    lrs = []
    for _ in range(6):
        agent.update(batch())
        lrs.append(agent.optimizer.param_groups[0]["lr"])
    assert lrs[1] == pytest.approx(0.1 + 0.9 * 0.5) and lrs[3:] == [pytest.approx(0.1)] * 3


def test_n_step_targets_bootstrap_with_gamma_to_the_n():
    values = [[0.0, 1.0], [2.0, 3.0], [4.0, 6.0]]
    agent = DQN(Table(values), lr=0.0, gamma=0.5, loss="mse_all", n_step=3)
    loss = agent.update(batch())
    q1 = torch.tensor(values)[[0, 1]]
    target_q = q1.clone()
    target_q[0, 1] = 1.0 + 0.5**3 * 3.0  # r already holds the n discounted rewards
    target_q[1, 0] = 5.0
    torch.testing.assert_close(loss, nn.MSELoss()(q1, target_q))
    with pytest.raises(ValueError, match="n_step"):
        DQN(Table(values), lr=0.0, n_step=0)


def runs_of(actions: list[int]) -> list[int]:
    """Lengths of the runs of equal consecutive actions."""
    lengths, n = [], 1
    for a, b in zip(actions, actions[1:]):
        if a == b:
            n += 1
        else:
            lengths.append(n)
            n = 1
    return lengths + [n]


def test_ez_greedy_holds_random_actions_for_zeta_distributed_runs_and_is_greedy_otherwise():
    from mlrepro.rl.dqn import EzGreedy

    agent = DQN(Table([[0.0, 9.0, 1.0, 2.0, 3.0, 4.0]]), lr=0.0)
    obs = torch.zeros(1, 1, 1, 1, dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    ez = EzGreedy(1, 6, mu=2.0, max_steps=100, generator=g)
    actions = [int(ez.act(agent, obs, 1.0)) for _ in range(20_000)]
    # every step explores; a draw ends its run early when it repeats the action (1 in 6)
    counts = torch.bincount(torch.tensor(actions), minlength=6).double() / len(actions)
    torch.testing.assert_close(
        counts, torch.full((6,), 1 / 6, dtype=torch.float64), atol=0.03, rtol=0
    )
    mean_hold = float((ez.pmf * torch.arange(1, 101, dtype=torch.float64)).sum())
    assert 3.0 < mean_hold < 3.3  # ζ(2) truncated at 100: 5.19 / 1.63
    lengths = runs_of(actions)
    assert sum(lengths) / len(lengths) == pytest.approx(mean_hold * 6 / 5, rel=0.1)
    assert max(lengths) >= 50  # long holds happen (plain ε-greedy: 6^-49)
    # ε-greedy with one-step holds (mu large) is plain ε-greedy: runs of 1.2 on average
    plain = EzGreedy(1, 6, mu=50.0, generator=torch.Generator().manual_seed(1))
    short = runs_of([int(plain.act(agent, obs, 1.0)) for _ in range(6000)])
    assert sum(short) / len(short) == pytest.approx(1.2, rel=0.1)
    # a hold outlives a fall of ε, not its episode; then ε = 0 is greedy every step
    ez.left[:], ez.action[:] = 3, 4
    assert [int(ez.act(agent, obs, 0.0)) for _ in range(5)] == [4, 4, 4, 1, 1]
    ez.left[:], ez.action[:] = 3, 4
    ez.end(torch.tensor([True]))
    assert {int(ez.act(agent, obs, 0.0)) for _ in range(200)} == {1}
