"""Reinforcement learning: ViZDoom environments, replay memory, ε schedule, Q-networks, DQN.

Needs the `rl` extra (`pip install -e ".[rl]"`): vizdoom and gymnasium. `env` imports them;
the rest of the package is plain torch.
"""

from .dqn import DQN, td_targets
from .qnet import ARCHS, DuelingHead, QNet
from .replay import NStepTransitions, ReplayMemory
from .schedule import epsilon

__all__ = [
    "ARCHS",
    "DQN",
    "DuelingHead",
    "NStepTransitions",
    "QNet",
    "ReplayMemory",
    "epsilon",
    "td_targets",
]
