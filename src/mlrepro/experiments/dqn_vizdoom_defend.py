"""Deep Q-learning on ViZDoom's "defend_the_center": the basic agent, turning and shooting.

Claim: none in the blog (it trains on basic only); we report what the same improved DQN reaches
(+1 per kill, −1 for dying, 26 bullets, so at most ≈ 25) against a uniformly random policy.
Run:   mlrepro run dqn-vizdoom-defend --seeds 0        Quick: mlrepro run dqn-vizdoom-defend --quick
       mlrepro run dqn-vizdoom-defend --preset random --seeds 0
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..config import opt
from ..experiment import Preset
from . import dqn_vizdoom_basic


@dataclass(frozen=True)
class Config(dqn_vizdoom_basic.Config):
    scenario: str = opt("defend_the_center", "ours", "a shipped scenario name or a path to a .cfg")
    frame_repeat: int = opt(12, "blog", "tics per action", ge=1)
    steps_per_epoch: int = opt(2000, "blog", "environment steps per epoch", ge=1)
    n_step: int = opt(1, "blog", "n-step returns", ge=1)
    epochs: int = opt(10, "ours", "epochs of training steps then test episodes", ge=0)
    test_episodes: int = opt(
        20, "ours", "test episodes per epoch (an episode lasts up to 175 steps)", ge=1
    )
    reward_scale: float = opt(1.0, "ours", "reward multiplier (rewards are already ±1)", gt=0)


# The same loop, replay and agent as dqn-vizdoom-basic (dqn-vizdoom's), with the settings above.
EXPERIMENT = dataclasses.replace(
    dqn_vizdoom_basic.EXPERIMENT,
    name="dqn-vizdoom-defend",
    config=Config,
    summary=__doc__.splitlines()[0],
    claim="no number in the blog; the basic agent on defend_the_center (max ≈ 25 kills)",
    presets={
        "quick": Preset(
            {"epochs": 2, "steps_per_epoch": 100, "test_episodes": 2, "replay_capacity": 1000},
            "smoke test: 2 × 100 steps",
            "seconds",
        ),
        "random": Preset(
            {"epochs": 0, "random_policy": True, "test_episodes": 100},
            "uniformly random actions",
            "seconds",
        ),
    },
)
