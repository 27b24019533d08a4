"""Deep Q-learning on ViZDoom's "basic" scenario: shoot the monster across the room, from pixels.

Claim: the blog's program reaches a mean test score of 66.3 (runs 70.0, 74.8, 54.1; 100 episodes
each) after 20 × 2,000 steps in ≈ 323 s on a 2-core CPU; our default preset (target network,
Double DQN, dueling head, Huber loss, Adam, 3-step returns, frame repeat 6) aims at ≥ 82, mean
of 3 seeds, within 5 minutes. It reaches 79.2 ± 0.9 in ≈ 4 min. At the blog's frame repeat of 12
no policy averages more than 79.3, and at 6 the best simple policy averages 81.6
(benchmarks/vizdoom_basic_ceiling.py, docs/results.md).
Run:   mlrepro run dqn-vizdoom-basic --seeds 0,1,2        Quick: mlrepro run dqn-vizdoom-basic --quick
       mlrepro run dqn-vizdoom-basic --preset blog --seeds 0,1,2     (the blog's algorithm)
       mlrepro run dqn-vizdoom-basic --preset random --seeds 0,1,2   (uniformly random actions)
       mlrepro play RUN_DIR --episodes 10 --gif agent.gif
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..engine import get_rng_state, set_rng_state
from ..plotting import plot_scores

CLAIM = "mean test score 66.3 after 20 × 2,000 steps (blog's program); target ≥ 82 in ≤ 5 min"
HEADLINE = ("test_score",)
REQUIRES = ("vizdoom", "gymnasium")  # the rl extra


@dataclass(frozen=True)
class Config:
    # --- environment ---
    scenario: str = "basic"  # blog (a shipped scenario name or a path to a .cfg)
    frame_repeat: int = 6  # ours (blog: 12, where no policy averages more than 79.3: docs/results.md)
    resolution: tuple[int, ...] = (30, 45)  # blog
    frame_stack: int = 1  # blog
    actions: Literal["all", "single"] = "all"  # blog: every button combination (8 in basic)
    n_envs: int = 1  # ours: measured, see docs/results.md
    async_envs: bool = True  # ours: the engine plays in a worker process while the net learns
    # --- schedule ---
    epochs: int = 8  # ours (blog: 20)
    steps_per_epoch: int = 3000  # ours (blog: 2000)
    test_episodes: int = 100  # blog
    test_epsilon: float = 0.0  # blog: greedy test episodes
    eps_start: float = 1.0  # blog
    eps_end: float = 0.1  # blog
    eps_hold_frac: float = 0.1  # blog: ε = 1 for the first 10 % of training
    eps_decay_end_frac: float = 0.6  # blog: linear decay until 60 %
    eps_per_epoch: bool = False  # blog: True (ε changes once per epoch); ours: every step
    # --- learning ---
    net: Literal["blog", "large"] = "blog"  # blog: conv 8@6×6 s3 → conv 8@3×3 s2 → fc 128
    dueling: bool = True  # ours (blog: False)
    optimizer: Literal["sgd", "adam"] = "adam"  # ours (blog: sgd)
    lr: float = 1e-3  # ours (blog: 0.00025)
    lr_schedule: Literal["constant", "cosine"] = "cosine"  # ours (blog: constant)
    lr_min_frac: float = 0.1  # ours: the cosine ends at lr × this
    loss: Literal["mse_all", "mse", "huber"] = "huber"  # ours (blog: mse_all)
    double: bool = True  # ours (blog: False)
    target_update_steps: int = 500  # ours (blog: 0, no target network)
    grad_clip_norm: float = 10.0  # ours (blog: 0, none)
    reward_scale: float = 0.01  # ours: scores ≈ ±100 → TD errors ≈ ±1 for Huber (blog: 1)
    gamma: float = 0.99  # blog
    n_step: int = 3  # ours (blog: 1-step targets)
    batch_size: int = 64  # blog
    replay_capacity: int = 10_000  # blog
    learning_starts: int = 64  # blog: learn once a batch is stored
    updates_per_step: float = 1.0  # blog
    torch_threads: int = 1  # ours: 2 threads are 50–100× slower for this net under load
    random_policy: bool = False  # ours: no learning, test uniformly random actions
    checkpoint_replay: bool = True  # ours: resume with the replay memory as it was

    def __post_init__(self):
        if len(self.resolution) != 2:
            raise ValueError(f"resolution must be two integers (h, w), got {self.resolution}")
        if self.epochs < 0 or self.steps_per_epoch < 1 or self.test_episodes < 1:
            raise ValueError("need epochs >= 0, steps_per_epoch >= 1 and test_episodes >= 1")
        if self.n_envs < 1 or self.torch_threads < 1 or self.n_step < 1:
            raise ValueError("n_envs, torch_threads and n_step must be >= 1")
        if not 0 <= self.test_epsilon <= 1:
            raise ValueError(f"test_epsilon must be in [0, 1], got {self.test_epsilon}")
        if self.epochs == 0 and not self.random_policy:
            raise ValueError("epochs must be >= 1 (0 only with random_policy)")


BLOG = {"frame_repeat": 12, "epochs": 20, "steps_per_epoch": 2000, "n_step": 1,
        "eps_per_epoch": True, "dueling": False, "optimizer": "sgd", "lr": 0.00025, "loss": "mse_all", "double": False, "target_update_steps": 0, "grad_clip_norm": 0.0,
        "reward_scale": 1.0, "lr_schedule": "constant", "async_envs": False}
PRESETS = {
    "quick": {"epochs": 2, "steps_per_epoch": 100, "test_episodes": 3, "replay_capacity": 1000},
    "blog": BLOG,
    "random": {"epochs": 0, "random_policy": True, "frame_repeat": 12},  # the blog's frame repeat
}


def _env_seed(seed: int, epoch: int, test: bool) -> int:
    # Each epoch's episodes depend only on (seed, epoch, train/test), so a resumed run plays the
    # same monsters as an uninterrupted one.
    return (seed * 1_000_003 + epoch * 2 + test) % 2**31


def run(cfg: Config, ctx) -> dict:
    from ..rl import DQN, QNet, ReplayMemory, epsilon
    from ..rl.env import make_vector_env
    from ..rl.train import evaluate, greedy_policy, learning_steps, random_policy

    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads)
    envs = make_vector_env(cfg.n_envs, asynchronous=cfg.async_envs, scenario=cfg.scenario,
                           frame_repeat=cfg.frame_repeat, resolution=cfg.resolution,
                           frame_stack=cfg.frame_stack, actions=cfg.actions,
                           work_dir=ctx.run_dir.path / "vizdoom")
    try:
        obs_shape = envs.single_observation_space.shape
        n_actions = int(envs.single_action_space.n)
        if cfg.random_policy:
            scores = evaluate(random_policy(n_actions, ctx.seed), envs, cfg.test_episodes,
                              seed=_env_seed(ctx.seed, 0, True))
            row = {"epoch": 0, **_score_stats("test_score", scores)}
            ctx.run_dir.write_history([row])
            plot_scores([row], ctx.run_dir.plot_path("learning_curve.png"), "random policy")
            return {"test_score": row["test_score_mean"], "test_score_std": row["test_score_std"],
                    "epochs": 0}

        gen = torch.Generator().manual_seed(ctx.seed)
        q = QNet(n_actions, in_channels=obs_shape[0], resolution=obs_shape[1:], arch=cfg.net,
                 dueling=cfg.dueling)
        agent = DQN(q, lr=cfg.lr, gamma=cfg.gamma, optimizer=cfg.optimizer, loss=cfg.loss,
                    double=cfg.double, target_update_steps=cfg.target_update_steps,
                    grad_clip_norm=cfg.grad_clip_norm, reward_scale=cfg.reward_scale,
                    lr_decay_updates=(round(cfg.epochs * cfg.steps_per_epoch * cfg.updates_per_step)
                                      if cfg.lr_schedule == "cosine" else 0),
                    lr_min_frac=cfg.lr_min_frac, n_step=cfg.n_step, device=ctx.device,
                    generator=gen)
        memory = ReplayMemory(cfg.replay_capacity, obs_shape, device=ctx.device, generator=gen)
        start_epoch = 0
        state = ctx.run_dir.load_checkpoint() if ctx.resume else None
        if state is not None:
            agent.load_state_dict(state["agent"])
            if state["replay"] is not None:
                memory.load_state_dict(state["replay"])
            set_rng_state(state["rng"])
            start_epoch = state["epoch"]
            ctx.log(f"resumed from {ctx.run_dir.checkpoint_path} after epoch {start_epoch}")
        ctx.run_dir.write_history([r for r in ctx.run_dir.history() if r["epoch"] <= start_epoch])

        total_steps = cfg.epochs * cfg.steps_per_epoch
        eps_kw = {"start": cfg.eps_start, "end": cfg.eps_end, "hold_frac": cfg.eps_hold_frac,
                      "decay_end_frac": cfg.eps_decay_end_frac}
        for epoch in range(start_epoch, cfg.epochs):
            def eps_at(k, epoch=epoch):
                done = epoch * cfg.steps_per_epoch + (0 if cfg.eps_per_epoch else k)
                return epsilon(done / total_steps, **eps_kw)

            start = time.perf_counter()
            train = learning_steps(agent, envs, memory, cfg.steps_per_epoch, epsilon_at=eps_at,
                                   batch_size=cfg.batch_size, learning_starts=cfg.learning_starts,
                                   updates_per_step=cfg.updates_per_step,
                                   seed=_env_seed(ctx.seed, epoch, False))
            test_start = time.perf_counter()
            scores = evaluate(greedy_policy(agent, cfg.test_epsilon), envs, cfg.test_episodes,
                              seed=_env_seed(ctx.seed, epoch, True))
            row = {"epoch": epoch + 1, **_score_stats("test_score", scores),
                   **_score_stats("train_score", train["scores"]), "epsilon": eps_at(0),
                   "loss": train["loss"], "updates": train["updates"],
                   "train_steps_per_s": train["steps"] / train["time_s"],
                   "train_time_s": train["time_s"], "test_time_s": time.perf_counter() - test_start,
                   "time_s": time.perf_counter() - start}
            ctx.run_dir.append_history(row)
            ctx.run_dir.save_checkpoint({
                "agent": agent.state_dict(),
                "replay": memory.state_dict() if cfg.checkpoint_replay else None,
                "epoch": epoch + 1, "rng": get_rng_state(), "config": ctx.config})
            ctx.log(f"epoch {epoch + 1}/{cfg.epochs}: test {row['test_score_mean']:.1f} ± "
                    f"{row['test_score_std']:.1f}, {row['train_episodes']} training episodes "
                    f"(ε {row['epsilon']:.2f}), loss {row['loss']:.4g}, "
                    f"{row['train_steps_per_s']:.0f} steps/s, {row['time_s']:.1f} s")
    finally:
        envs.close()
        torch.set_num_threads(threads)

    rows = ctx.run_dir.history()
    plot_scores(rows, ctx.run_dir.plot_path("learning_curve.png"),
                f"DQN on ViZDoom {cfg.scenario}")
    last = rows[-1]
    return {"test_score": last["test_score_mean"], "test_score_std": last["test_score_std"],
            "best_test_score": max(r["test_score_mean"] for r in rows),
            "train_steps_per_s": float(np.mean([r["train_steps_per_s"] for r in rows])),
            "train_time_s": sum(r["train_time_s"] for r in rows),
            "test_time_s": sum(r["test_time_s"] for r in rows), "epochs": last["epoch"]}


def _score_stats(prefix: str, scores: list[float]) -> dict:
    a = np.asarray(scores, dtype=np.float64)
    if a.size == 0:
        return {f"{prefix}_mean": None, f"{prefix}_std": None, f"{prefix.split('_')[0]}_episodes": 0}
    return {f"{prefix}_mean": float(a.mean()), f"{prefix}_std": float(a.std()),
            f"{prefix}_min": float(a.min()), f"{prefix}_max": float(a.max()),
            f"{prefix.split('_')[0]}_episodes": int(a.size)}


def play(cfg: Config, run_dir, *, episodes: int = 10, gif=None, seed: int = 0,
         fps: float = 35.0) -> dict:
    """Greedy episodes of a run's last checkpoint; optionally a GIF of every tic (`mlrepro play`)."""
    import tempfile

    from ..rl import QNet
    from ..rl.env import DoomEnv
    from ..rl.play import play_episodes, write_gif

    state = run_dir.load_checkpoint()
    if state is None:
        raise FileNotFoundError(f"{run_dir.path} has no checkpoint to play")
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads)
    with tempfile.TemporaryDirectory(prefix="vizdoom-play-") as work_dir:
        env = DoomEnv(cfg.scenario, frame_repeat=cfg.frame_repeat, resolution=cfg.resolution,
                      frame_stack=cfg.frame_stack, actions=cfg.actions, work_dir=work_dir,
                      render_mode="rgb_array")
        try:
            q = QNet(int(env.action_space.n), in_channels=cfg.frame_stack,
                     resolution=cfg.resolution, arch=cfg.net, dueling=cfg.dueling)
            q.load_state_dict(state["agent"]["q"])
            q.eval()

            def policy(obs):
                with torch.no_grad():
                    return q(torch.as_tensor(obs).float().div_(255)).argmax(dim=1).numpy()

            scores, screens = play_episodes(policy, env, episodes, seed=seed)
        finally:
            env.close()
            torch.set_num_threads(threads)
    if gif is not None:
        write_gif(screens, gif, fps=fps)
    return {"scores": scores, "mean_score": float(np.mean(scores)), "frames": len(screens),
            "epoch": state["epoch"]}
