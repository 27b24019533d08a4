"""Deep Q-learning on ViZDoom's "defend_the_center": the basic agent, turning and shooting.

Claim: none in the blog (it trains on basic only); we report what the same improved DQN reaches
(+1 per kill, −1 for dying, 26 bullets, so at most ≈ 25) against a uniformly random policy.
Run:   mlrepro run dqn-vizdoom-defend --seeds 0        Quick: mlrepro run dqn-vizdoom-defend --quick
       mlrepro run dqn-vizdoom-defend --preset random --seeds 0
"""

from __future__ import annotations

from dataclasses import dataclass

from .dqn_vizdoom_basic import REQUIRES, play, run  # noqa: F401  (the same loop and replay)
from .dqn_vizdoom_basic import Config as BasicConfig

CLAIM = "no number in the blog; the basic agent on defend_the_center (max ≈ 25 kills)"
HEADLINE = ("test_score",)


@dataclass(frozen=True)
class Config(BasicConfig):
    scenario: str = "defend_the_center"  # ours
    frame_repeat: int = 12  # blog
    steps_per_epoch: int = 2000  # blog
    n_step: int = 1  # blog
    epochs: int = 10  # ours
    test_episodes: int = 20  # ours: an episode lasts up to 175 steps (2,100 tics), basic's ≤ 25
    reward_scale: float = 1.0  # ours: rewards are already ±1 per kill / death


PRESETS = {
    "quick": {"epochs": 2, "steps_per_epoch": 100, "test_episodes": 2, "replay_capacity": 1000},
    "random": {"epochs": 0, "random_policy": True, "test_episodes": 100},
}
