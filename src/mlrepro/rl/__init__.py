"""Reinforcement learning: ViZDoom environments (needs the `rl` extra: vizdoom, gymnasium)."""
