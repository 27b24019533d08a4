"""What random play earns on each ViZDoom scenario, and what reward normalisation makes of it.

For every scenario of dqn-vizdoom's development set, uniformly random actions of the agent's action
set (`actions="combos"`) at its frame repeat play seeded episodes. The table gives the buttons and
actions, the episode returns (mean ± standard error, range), the per-step rewards (range, share
with |r| > 1, the distinct values and what clipping to [−1, 1] turns them into), and σ of the
discounted return G_t = γ G_{t−1} + r_t that `RewardNorm("returns")` divides by (floored at 1).

    python benchmarks/vizdoom_scenarios.py [--episodes 30] [--frame-repeat 6] [--scenarios a,b]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def scenario_stats(
    scenario: str, episodes: int, frame_repeat: int, gamma: float, seed: int
) -> dict:
    from mlrepro.rl.env import DoomEnv
    from mlrepro.rl.rewards import RewardNorm

    env = DoomEnv(scenario, frame_repeat=frame_repeat, actions="combos", seed_episodes=True)
    rng = np.random.default_rng(seed)
    norm = RewardNorm("returns", 1, gamma, freeze_after=10**12)
    returns, lengths, rewards = [], [], []
    start = time.perf_counter()
    try:
        env.reset(seed=seed)
        while len(returns) < episodes:
            _, r, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
            rewards.append(r)
            norm.observe([r], [terminated or truncated])
            if terminated or truncated:
                returns.append(info["episode"]["r"])
                lengths.append(info["episode"]["l"])
                env.reset()
        buttons, n_actions = env.buttons, int(env.action_space.n)
    finally:
        env.close()
    g, r = np.asarray(returns), np.asarray(rewards)
    levels = np.unique(np.round(r, 4))
    return {
        "scenario": scenario,
        "buttons": len(buttons),
        "actions": n_actions,
        "return_mean": g.mean(),
        "return_se": g.std(ddof=1) / np.sqrt(g.size),
        "return_min": g.min(),
        "return_max": g.max(),
        "length": np.mean(lengths),
        "r_min": r.min(),
        "r_max": r.max(),
        "big": float(np.mean(np.abs(r) > 1)),
        "levels": levels,
        "sigma": norm.std,
        "scale": norm.scale,
        "seconds": time.perf_counter() - start,
    }


def _levels(levels: np.ndarray) -> str:
    def show(v):
        return f"{v:g}"

    if levels.size > 8:
        return f"{levels.size} values in [{show(levels[0])}, {show(levels[-1])}]"
    clipped = np.clip(levels, -1, 1)
    return ", ".join(show(v) if v == c else f"{show(v)}→{show(c)}" for v, c in zip(levels, clipped))


def main(argv: list[str] | None = None) -> None:
    from mlrepro.experiments.dqn_vizdoom import DEVELOPMENT_SET

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--frame-repeat", type=int, default=6)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scenarios", default=",".join(DEVELOPMENT_SET))
    args = p.parse_args(argv)
    print(
        f"random actions ('combos'), frame repeat {args.frame_repeat}, {args.episodes} episodes "
        f"seeded {args.seed}..., γ = {args.gamma}\n"
    )
    print(
        "| scenario | buttons → actions | return: mean ± s.e. [min, max] | steps/episode | "
        "reward per step [min, max], share with abs > 1 | reward values (→ clipped) | "
        "σ of discounted return → scale |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.scenarios.split(","):
        s = scenario_stats(name, args.episodes, args.frame_repeat, args.gamma, args.seed)
        print(
            f"| {name} | {s['buttons']} → {s['actions']} | {s['return_mean']:.2f} ± "
            f"{s['return_se']:.2f} [{s['return_min']:g}, {s['return_max']:g}] | "
            f"{s['length']:.0f} | [{s['r_min']:g}, {s['r_max']:g}], {100 * s['big']:.0f} % | "
            f"{_levels(s['levels'])} | {s['sigma']:.3g} → {s['scale']:.3g} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
