"""Reward normalisation across scenarios whose scores differ by orders of magnitude.

ViZDoom's scenarios pay ±1 per kill (defend_the_center, defend_the_line, predict_position,
my_way_home), or −1 per tic and +106 per kill (basic), or distance gained and −100 per death
(deadly_corridor). A Q-network trained with one learning rate and a Huber loss wants rewards of
about ±1 everywhere. The candidates, each measured in `docs/results.md` ("ViZDoom across
scenarios"):

- **clip** each reward to [−1, 1] (DQN on Atari, Mnih et al. 2015). It keeps ±1 rewards and
  flattens larger ones: on basic a step that fires (−6 − 5) then costs what a step that moves
  (−6) does, and the agent fired its ammunition away, below random play. On deadly_corridor,
  where dying (−100) then costs what one step backwards does, it learned fastest.
- **returns** (the default): divide by σ of the discounted return G_t = γ G_{t−1} + r_t, as PPO
  implementations and gymnasium's `NormalizeReward` do: Q-values are then about ±1, and the
  ratios between rewards (a shot, a step, a kill, a death) are kept. On basic it picks 0.011,
  next to the 0.01 tuned by hand for dqn-vizdoom-basic. Where rewards come every step
  (deadly_corridor's distance), G sums many of them, each step's reward shrinks well below 1
  and the agent learned more slowly than with clipping.
- **rewards**: divide by σ of the per-step rewards (a step's reward about ±1). It learned
  deadly_corridor as fast as clipping, but on basic (0.07) it did worse than random play, as
  clipping did.

For "returns" and "rewards" σ is floored at 1 (never scale up: ±1 rewards stay as they are, as
under clipping), measured while the agent explores at random (ε = 1) and then frozen: replayed
transitions are rescaled at sampling time, so a σ that kept following the improving policy would
change the units of the Q-targets mid-training.
"""

from __future__ import annotations

import numpy as np

KINDS = ("returns", "rewards", "clip", "none")


class RewardNorm:
    """What the learner sees of a reward: `observe(r, done)` before storing a transition gives the
    reward to store, and `scale` multiplies stored rewards at update time (`DQN.reward_scale`).

    Args:
        kind: "rewards" or "returns" (divide by max(σ of the rewards or of the discounted
            returns, `floor`), σ frozen after `freeze_after` environment steps), "clip" (store
            rewards clipped to [−1, 1]) or "none".
        scale: a fixed multiplier on top (an experiment's `reward_scale`).
    """

    def __init__(
        self,
        kind: str,
        n_envs: int,
        gamma: float,
        *,
        scale: float = 1.0,
        floor: float = 1.0,
        freeze_after: int = 0,
    ):
        if kind not in KINDS:
            raise ValueError(
                f"reward normalisation must be one of {', '.join(KINDS)}, got {kind!r}"
            )
        if floor <= 0:
            raise ValueError(f"floor must be > 0, got {floor}")
        self.kind, self.gamma, self.base, self.floor = kind, gamma, scale, floor
        self.freeze_after = freeze_after
        self.returns = np.zeros(n_envs)  # running discounted return of each environment
        self.count, self.mean, self.m2 = 0, 0.0, 0.0  # Welford's running moments of G

    @property
    def frozen(self) -> bool:
        return self.count >= self.freeze_after

    @property
    def std(self) -> float:
        """σ of the rewards or discounted returns seen so far (0 before two of them)."""
        return float(np.sqrt(self.m2 / (self.count - 1))) if self.count > 1 else 0.0

    @property
    def scale(self) -> float:
        """The multiplier of stored rewards in TD targets."""
        if self.kind not in ("returns", "rewards"):
            return self.base
        return self.base / max(self.std, self.floor)

    def observe(self, rewards, dones) -> np.ndarray:
        """One vector step's rewards (N,) and episode ends (N,); returns the rewards to store."""
        r = np.asarray(rewards, dtype=np.float64)
        if self.kind == "clip":
            return np.clip(r, -1.0, 1.0)
        if self.kind == "returns" and not self.frozen:
            self.returns = self.gamma * self.returns + r
            self._add(self.returns)
            self.returns[np.asarray(dones, dtype=bool)] = 0.0
        elif self.kind == "rewards" and not self.frozen:
            self._add(r)
        return r

    def _add(self, x: np.ndarray) -> None:
        # Chan et al.'s parallel update of (count, mean, M2) with a batch of values.
        n, mean = x.size, float(x.mean())
        m2 = float(((x - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta**2 * self.count * n / total
        self.count = total

    def state_dict(self) -> dict:
        return {
            "returns": self.returns.tolist(),
            "count": self.count,
            "mean": self.mean,
            "m2": self.m2,
        }

    def load_state_dict(self, state: dict) -> None:
        self.returns = np.asarray(state["returns"], dtype=np.float64)
        self.count, self.mean, self.m2 = int(state["count"]), state["mean"], state["m2"]
