"""The two halves of a DQN epoch on vector environments: learning steps, then test episodes."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from ..engine.progress import Progress
from .dqn import DQN, EzGreedy
from .replay import NStepTransitions, ReplayMemory
from .rewards import RewardNorm


def finished_episodes(info: dict) -> list[tuple[int, float, int]]:
    """(env index, return, length) of each episode that ended in this vector step.

    With same-step autoreset, gymnasium moves the ending step's info under `final_info`.
    """
    final = info.get("final_info")
    if not final or "episode" not in final:
        return []
    ep, mask = final["episode"], final["_episode"]
    return [(int(i), float(ep["r"][i]), int(ep["l"][i])) for i in np.flatnonzero(mask)]


def learning_steps(
    agent: DQN,
    envs,
    memory: ReplayMemory,
    n_steps: int,
    *,
    epsilon_at: Callable[[int], float],
    batch_size: int,
    learning_starts: int,
    updates_per_step: float = 1.0,
    seed: int | None = None,
    progress: str | None = None,
    reward_norm: RewardNorm | None = None,
    ez_greedy: tuple[float, int] | None = None,
) -> dict:
    """`n_steps` ε-greedy transitions from freshly reset `envs` into `memory`, learning meanwhile.

    Transitions are stored as `agent.n_step`-step ones (those of the episodes still running at the
    end are dropped). Each transition earns `updates_per_step` updates of one batch. If the
    environments are asynchronous, the updates run while the engines play the chosen actions (the
    stored transition then arrives after those updates; the action was chosen before them).
    Otherwise the order is the blog's: act, step, store, learn.

    Args:
        epsilon_at: ε for the k-th transition of this call (k counts all environments).
        progress: a label to report progress under on stderr (engine.progress), or None.
        reward_norm: turns each reward into the one stored, and sets `agent.reward_scale` (the
            scale of stored rewards in TD targets) after every step.
        ez_greedy: (μ, max steps) to explore with temporally extended ε-greedy (`EzGreedy`),
            drawing from the agent's generator; None: plain ε-greedy.
    Returns:
        scores and lengths of the episodes that ended, mean loss, updates and steps made, seconds.
    """
    start = time.perf_counter()
    n = envs.num_envs
    overlap = hasattr(envs, "step_async")
    obs, _ = envs.reset(seed=vector_seed(seed, n))
    transitions = NStepTransitions(n, agent.n_step, agent.gamma)
    scores, lengths = [], []
    loss_sum, n_updates, credit, steps = torch.zeros(()), 0, 0.0, 0
    bar = Progress(n_steps, progress or "", unit="step", enabled=progress is not None)
    explorer = (
        EzGreedy(
            n,
            agent.n_actions,
            mu=ez_greedy[0],
            max_steps=ez_greedy[1],
            generator=agent.generator,
        )
        if ez_greedy is not None
        else None
    )

    def learn() -> None:
        nonlocal loss_sum, n_updates, credit
        if len(memory) < learning_starts:
            return
        credit += updates_per_step * n
        k = int(credit)
        if k:
            credit -= k
            loss_sum = loss_sum + agent.learn(memory, batch_size, k)
            n_updates += k

    while steps < n_steps:
        eps = epsilon_at(steps)
        actions = (
            agent.act(obs, eps) if explorer is None else explorer.act(agent, obs, eps)
        ).numpy()
        if overlap:
            envs.step_async(actions)
            learn()  # --- learn while the engines play ---
            next_obs, r, terminated, truncated, info = envs.step_wait()
        else:
            next_obs, r, terminated, truncated, info = envs.step(actions)
        # A finished episode's next_obs is already the next episode's first frame; it is never used
        # because done = 1 removes the bootstrap term. Timeouts count as terminal like in the blog:
        # ViZDoom has no frame after the last tic and the 300-tic limit is part of the task.
        if reward_norm is not None:
            r = reward_norm.observe(r, terminated | truncated)
            agent.reward_scale = reward_norm.scale
        ready = transitions.add(obs, actions, r, next_obs, terminated | truncated)
        if explorer is not None:
            explorer.end(terminated | truncated)
        if ready is not None:
            memory.add(*ready)
        if not overlap:
            learn()
        for _, score, length in finished_episodes(info):
            scores.append(score)
            lengths.append(length)
        obs = next_obs
        steps += n
        bar.update(n, f"{len(scores)} episodes" if scores else "")
    bar.close()
    return {
        "scores": scores,
        "lengths": lengths,
        "steps": steps,
        "updates": n_updates,
        "loss": (loss_sum / max(n_updates, 1)).item(),
        "time_s": time.perf_counter() - start,
    }


def vector_seed(seed: int | None, n_envs: int) -> int | list[int] | None:
    """Reset seeds for `n_envs` environments: `seed` for one; else far apart, so that environments
    seeding every episode (`DoomEnv(seed_episodes=True)`: s, s + 1, ...) never share an episode."""
    if seed is None or n_envs == 1:
        return seed
    return [(seed + i * 1_000_003) % 2**31 for i in range(n_envs)]


def evaluate(
    policy: Callable[[np.ndarray], np.ndarray], envs, episodes: int, *, seed: int | None = None
) -> list[float]:
    """Scores of `episodes` episodes of `policy(obs (N, ...)) -> actions (N,)`.

    Environment i plays a fixed quota of the episodes (not "the first `episodes` to finish", which
    would favour short episodes when several environments run at once).
    """
    n = envs.num_envs
    quota = [episodes // n + (i < episodes % n) for i in range(n)]
    scores: list[list[float]] = [[] for _ in range(n)]
    obs, _ = envs.reset(seed=vector_seed(seed, n))
    while any(len(s) < q for s, q in zip(scores, quota)):
        obs, _, _, _, info = envs.step(np.asarray(policy(obs)))
        for i, score, _ in finished_episodes(info):
            if len(scores[i]) < quota[i]:
                scores[i].append(score)
    return [x for s in scores for x in s]


def greedy_policy(agent: DQN, epsilon: float = 0.0) -> Callable[[np.ndarray], np.ndarray]:
    """The agent's greedy actions, or ε-greedy ones: a small ε breaks the rare deterministic loop
    (e.g. left, right, left, ...) that a greedy policy can fall into until the episode times out."""
    return lambda obs: agent.act(obs, epsilon).numpy()


def random_policy(n_actions: int, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    return lambda obs: rng.integers(0, n_actions, size=len(obs))
