"""Replaying a policy: the screens of every tic, scores, and an animated GIF of them."""

from __future__ import annotations

import io
import os
from collections.abc import Callable

import numpy as np
from PIL import Image

from ..io import atomic_write_bytes


def play_episodes(
    policy: Callable[[np.ndarray], np.ndarray], env, episodes: int, *, seed: int = 0
) -> tuple[list[float], list[np.ndarray]]:
    """Scores of `episodes` episodes of `policy`, episode k seeded `seed + k`, and, on a DoomEnv
    made with render_mode="rgb_array", every tic's (H, W) grey screen, in order (else none)."""
    scores: list[float] = []
    screens: list[np.ndarray] = []
    recording = env.render_mode == "rgb_array"
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        if recording:
            screens.append(env.render()[:, :, 0])
        done = False
        while not done:
            action = int(np.asarray(policy(obs[None]))[0])
            obs, _, terminated, truncated, info = env.step(action)
            if recording:
                screens.extend(env.tic_screens)
            done = terminated or truncated
        scores.append(info["episode"]["r"])
    return scores, screens


def write_gif(
    screens: list[np.ndarray], path: str | os.PathLike, *, fps: float = 35.0, scale: int = 1
) -> None:
    """Grey (H, W) uint8 screens as an animated, looping GIF (written atomically)."""
    if not screens:
        raise ValueError("no frames to write")
    frames = [Image.fromarray(s) for s in screens]
    if scale != 1:
        frames = [f.resize((f.width * scale, f.height * scale), Image.NEAREST) for f in frames]
    buf = io.BytesIO()
    frames[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=max(20, 10 * round(100 / fps)),
        loop=0,
    )  # GIFs count in 1/100 s
    atomic_write_bytes(path, buf.getvalue())
