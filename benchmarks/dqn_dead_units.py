"""How much of a dqn-vizdoom Q-net is alive: ReLU units that fire on some frame of random play.

For each run folder (or each of its per-epoch checkpoints, `--keep-checkpoints all`), plays
`--episodes` episodes of uniformly random actions in the run's own environment (scenario, frame
repeat, stack, actions; episode seeds 0, 1, ...), feeds every observation to the run's Q-net and
counts, per ReLU layer, the units that are positive on at least one of them (a conv filter at any
position). A layer with no such unit passes nothing on: the net's output is then the same for
every frame. Also prints the spread of the Q-values over the frames (mean over actions of their
standard deviation) and over the actions (mean over frames).

    python benchmarks/dqn_dead_units.py RUN_DIR [RUN_DIR ...] [--epochs] [--episodes 10]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn


def random_frames(cfg, episodes: int, max_frames: int = 2000) -> tuple[torch.Tensor, int]:
    """Observations of random play in the run's environment in [0, 1], and its number of
    actions."""
    from mlrepro.experiments.dqn_vizdoom import env_options
    from mlrepro.rl.env import DoomEnv

    env = DoomEnv(**env_options(cfg))
    rng = np.random.default_rng(0)
    frames: list[np.ndarray] = []
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=ep)
            done = False
            while not done and len(frames) < max_frames:
                frames.append(obs)
                obs, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
                done = terminated or truncated
        n_actions = int(env.action_space.n)
    finally:
        env.close()
    return torch.as_tensor(np.stack(frames)).float().div_(255), n_actions


def alive_units(
    q: nn.Module, x: torch.Tensor
) -> tuple[dict[str, tuple[int, int]], float, float, float]:
    """({ReLU layer: (units positive on some frame, units)}, Q spread over frames, over actions,
    mean Q: beyond the range of the scenario's returns, the values have diverged)."""
    seen: dict[str, torch.Tensor] = {}
    hooks = []
    for name, module in q.named_modules():
        if isinstance(module, nn.ReLU):

            def hook(_m, _i, out, name=name):
                per_unit = out.amax(dim=(0, 2, 3)) if out.dim() == 4 else out.amax(dim=0)
                seen[name] = per_unit > 0

            hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            values = q(x)
    finally:
        for h in hooks:
            h.remove()
    layers = {k: (int(v.sum()), v.numel()) for k, v in seen.items()}
    spread = float(values.std(dim=0).mean()), float(values.std(dim=1).mean())
    return layers, *spread, float(values.mean())


def main() -> None:
    from mlrepro.errors import MlreproError
    from mlrepro.experiments.dqn_vizdoom import build_qnet
    from mlrepro.runfolder import load_run

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--epochs", action="store_true", help="every checkpoint-eN.pt, not the last")
    p.add_argument("--episodes", type=int, default=10, help="random-play episodes (default 10)")
    args = p.parse_args()
    if args.episodes < 1:
        p.error(f"--episodes must be >= 1, got {args.episodes}")
    torch.set_num_threads(1)
    for run_dir in args.run_dirs:
        try:
            _, _, exp, cfg = load_run(run_dir)
        except MlreproError as e:
            raise SystemExit(f"dqn_dead_units: {e}") from None
        if exp.name != "dqn-vizdoom":
            raise SystemExit(f"dqn_dead_units: {run_dir} is a run of {exp.name}, not dqn-vizdoom")
        files = [Path(run_dir) / "checkpoint.pt"]
        if args.epochs:
            files = sorted(
                Path(run_dir).glob("checkpoint-e*.pt"),
                key=lambda f: int(re.search(r"-e(\d+)\.pt$", f.name).group(1)),
            )
        if not files or not files[0].is_file():
            what = "checkpoint-eN.pt (--keep-checkpoints all)" if args.epochs else "checkpoint.pt"
            raise SystemExit(f"dqn_dead_units: {run_dir} has no {what}")
        x, n_actions = random_frames(cfg, args.episodes)
        print(
            f"{run_dir}: {cfg.scenario}, {cfg.frame_stack} frame(s), center_inputs "
            f"{cfg.center_inputs}; {len(x)} frames of random play"
        )
        for f in files:
            state = torch.load(f, map_location="cpu", weights_only=True)
            q = build_qnet(cfg, n_actions)
            q.load_state_dict(state["agent"]["q"])
            q.eval()
            layers, over_frames, over_actions, mean_q = alive_units(q, x)
            alive = ", ".join(f"{k} {a}/{n}" for k, (a, n) in layers.items())
            print(
                f"  epoch {state['epoch']}: alive {alive}; Q spread over frames "
                f"{over_frames:.3f}, over actions {over_actions:.3f}; mean Q {mean_q:.2f}"
            )


if __name__ == "__main__":
    main()
