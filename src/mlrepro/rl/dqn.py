"""Deep Q-learning: ε-greedy acting (plain or temporally extended), TD targets (plain,
target-network, Double DQN), one update."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .replay import ReplayMemory


def td_targets(
    r: torch.Tensor,
    done: torch.Tensor,
    q2_online: torch.Tensor,
    q2_target: torch.Tensor,
    gamma: float,
    double: bool,
) -> torch.Tensor:
    """y = r + γ (1 − done) Q'(s2, a*), with (B,) r, done and (B, A) Q-values of s2.

    Plain DQN: a* = argmax_a Q'(s2, a), i.e. y uses max_a Q'(s2, a). Double DQN (van Hasselt et al.
    2016, eq. 4): a* = argmax_a Q_online(s2, a), evaluated by the target network Q'.
    """
    if double:
        best = q2_online.argmax(dim=1, keepdim=True)  # (B, 1)
        q2 = q2_target.gather(1, best).squeeze(1)
    else:
        q2 = q2_target.max(dim=1).values
    return r + gamma * (1.0 - done) * q2


class DQN:
    """An online Q-network, an optional target network, an optimizer and the update rule.

    Args:
        q_net: maps (B, C, H, W) frames in [0, 1] to (B, A) Q-values; has an `n_actions` attribute.
        target_update_steps: copy the online weights into a separate target network every that many
            updates; 0 means no target network (the blog: targets come from the network being
            trained).
        loss: "mse_all" is the blog's `MSELoss()(q(s1), target_q)` over the whole (B, A) output,
            where target_q equals q(s1) except at the action taken, i.e. the squared TD error
            divided by A; "mse" and "huber" (smooth L1, δ = 1) average over the batch only.
        reward_scale: rewards are multiplied by this before the TD target (scores are not).
        lr_decay_updates: cosine-anneal the learning rate to `lr * lr_min_frac` over this many
            updates, then hold it (0: constant, as in the blog).
        n_step: replayed transitions span this many steps (`NStepTransitions`, built by
            `learning_steps` from `gamma` and `n_step`); targets bootstrap with γ^n_step.
    """

    def __init__(
        self,
        q_net: nn.Module,
        *,
        lr: float,
        gamma: float = 0.99,
        optimizer: str = "sgd",
        loss: str = "mse_all",
        double: bool = False,
        target_update_steps: int = 0,
        grad_clip_norm: float = 0.0,
        reward_scale: float = 1.0,
        lr_decay_updates: int = 0,
        lr_min_frac: float = 0.0,
        n_step: int = 1,
        device="cpu",
        generator: torch.Generator | None = None,
    ):
        if loss not in ("mse_all", "mse", "huber"):
            raise ValueError(f"loss must be 'mse_all', 'mse' or 'huber', got {loss!r}")
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        if double and target_update_steps == 0:
            raise ValueError("double DQN needs a target network (target_update_steps > 0)")
        self.device = torch.device(device)
        self.q = q_net.to(self.device)
        self.n_actions = int(q_net.n_actions)
        self.target = copy.deepcopy(self.q).requires_grad_(False) if target_update_steps else None
        if optimizer == "sgd":
            self.optimizer = torch.optim.SGD(self.q.parameters(), lr=lr)
        elif optimizer == "adam":
            # fused: one kernel for all parameters instead of ~10 small ops per tensor (CPU, CUDA)
            fused = self.device.type in ("cpu", "cuda")
            self.optimizer = torch.optim.Adam(self.q.parameters(), lr=lr, fused=fused)
        else:
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
        # Cosine decay of the learning rate over `lr_decay_updates` updates (0: constant).
        self.scheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=lr_decay_updates, eta_min=lr * lr_min_frac
            )
            if lr_decay_updates
            else None
        )
        self.gamma, self.n_step, self.loss, self.double = gamma, n_step, loss, double
        self.target_update_steps, self.grad_clip_norm = target_update_steps, grad_clip_norm
        self.reward_scale = reward_scale
        self.generator = generator if generator is not None else torch.Generator()
        self.updates = 0

    @torch.inference_mode()
    def act(self, obs, epsilon: float = 0.0) -> torch.Tensor:
        """ε-greedy actions (N,) on the CPU for uint8 observations (N, C, H, W)."""
        n = len(obs)
        explore = torch.rand(n, generator=self.generator) < epsilon
        if explore.all():  # like the blog, skip the network when every action is random
            return torch.randint(0, self.n_actions, (n,), generator=self.generator)
        obs = torch.as_tensor(obs, device=self.device).float().div_(255)
        greedy = self.q(obs).argmax(dim=1).cpu()
        if not explore.any():
            return greedy
        random_actions = torch.randint(0, self.n_actions, (n,), generator=self.generator)
        return torch.where(explore, random_actions, greedy)

    def update(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """One gradient step on a replay batch (s1, a, r, s2, done); returns the loss (detached)."""
        s1, a, r, s2, done = batch
        r = r * self.reward_scale
        with torch.no_grad():
            q2_online = self.q(s2)  # (B, A)
            q2_target = self.target(s2) if self.target is not None else q2_online
            y = td_targets(
                r, done, q2_online, q2_target, self.gamma**self.n_step, self.double
            )  # (B,)
        q1 = self.q(s1)  # (B, A)
        q_sa = q1.gather(1, a.unsqueeze(1)).squeeze(1)  # (B,)
        if self.loss == "huber":
            loss = F.smooth_l1_loss(q_sa, y)
        else:
            loss = F.mse_loss(q_sa, y)
            if self.loss == "mse_all":
                loss = loss / q1.shape[1]  # the other A − 1 entries of the blog's loss are 0
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip_norm > 0:
            nn.utils.clip_grad_norm_(self.q.parameters(), self.grad_clip_norm)
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler.last_epoch < self.scheduler.T_max:
            self.scheduler.step()
        self.updates += 1
        if self.target is not None and self.updates % self.target_update_steps == 0:
            self.target.load_state_dict(self.q.state_dict())
        return loss.detach()

    def learn(
        self, memory: ReplayMemory, batch_size: int, n_updates: int = 1
    ) -> torch.Tensor | None:
        """`n_updates` updates on fresh uniform batches; the summed loss (None if none was made)."""
        total = None
        for _ in range(n_updates):
            loss = self.update(memory.sample(batch_size))
            total = loss if total is None else total + loss
        return total

    def state_dict(self) -> dict:
        return {
            "q": self.q.state_dict(),
            "target": self.target.state_dict() if self.target is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "updates": self.updates,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.q.load_state_dict(state["q"])
        if self.target is not None:
            self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.updates = state["updates"]
        self.generator.set_state(state["generator"])


class EzGreedy:
    """Temporally-extended ε-greedy exploration ("εz-greedy", Dabney, Ostrovski & Barreto 2021,
    "Temporally-Extended ε-Greedy Exploration", ICLR): an environment that holds no random action
    starts one with probability ε — a uniformly random action, repeated for n steps with n drawn
    from a zeta distribution, P(n) ∝ n^−μ for 1 ≤ n ≤ `max_steps` — and otherwise acts greedily.
    An action held ends with its episode (`end`).

    Why: with plain ε-greedy a random policy almost never repeats one action for long, so the
    runs of actions a scenario needs (turning until aimed before the one rocket of
    predict_position, walking a corridor of my_way_home) are exponentially rare; a zeta draw makes
    long runs only polynomially rare (μ = 2: a run of 8 or more steps starts 8 % of the time).
    Written here because it is one sampling rule over `DQN.act`; no maintained library has it.
    """

    def __init__(
        self,
        n_envs: int,
        n_actions: int,
        *,
        mu: float = 2.0,
        max_steps: int = 100,
        generator: torch.Generator | None = None,
    ):
        if mu <= 0 or max_steps < 1:
            raise ValueError(f"EzGreedy needs mu > 0 and max_steps >= 1, got {mu}, {max_steps}")
        self.n_actions = int(n_actions)
        self.generator = generator if generator is not None else torch.Generator()
        lengths = torch.arange(1, max_steps + 1, dtype=torch.float64)
        self.pmf = lengths.pow(-mu) / lengths.pow(-mu).sum()  # P(n) for n = 1 … max_steps
        self.left = torch.zeros(n_envs, dtype=torch.long)  # steps still to hold, per environment
        self.action = torch.zeros(n_envs, dtype=torch.long)

    def act(self, agent: DQN, obs, epsilon: float) -> torch.Tensor:
        """Actions (N,): the held random action where one is held, else greedy."""
        n = len(obs)
        start = (self.left == 0) & (torch.rand(n, generator=self.generator) < epsilon)
        if start.any():
            k = int(start.sum())
            self.action[start] = torch.randint(0, self.n_actions, (k,), generator=self.generator)
            self.left[start] = (
                torch.multinomial(self.pmf, k, replacement=True, generator=self.generator) + 1
            )
        held = self.left > 0
        if held.all():  # every environment explores: skip the network
            actions = self.action.clone()
        else:
            actions = torch.where(held, self.action, agent.act(obs, 0.0))
        self.left[held] -= 1
        return actions

    def end(self, done) -> None:
        """Episodes that ended (bool (N,)) drop what their environment held."""
        self.left[torch.as_tensor(done, dtype=torch.bool)] = 0
