"""Deep Q-learning on ViZDoom's "basic" scenario: shoot the monster across the room, from pixels.

Claim: the blog's program reaches a mean test score of 66.3 (runs 70.0, 74.8, 54.1; 100 episodes
each) after 20 × 2,000 steps in ≈ 323 s on a 2-core CPU (blog); our default preset (target network,
Double DQN, dueling head, Huber loss, Adam, 3-step returns, frame repeat 6) aims at ≥ 98 % of the
exact optimum of the test episodes (benchmarks/vizdoom_basic_ceiling.py). Measured: docs/results.md.
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

from ..config import ExperimentConfig, opt
from ..experiment import Experiment, Preset, RunContext
from ..plotting import plot_scores


@dataclass(frozen=True)
class Config(ExperimentConfig):
    # --- environment ---
    scenario: str = opt("basic", "blog", "a shipped scenario name or a path to a .cfg")
    frame_repeat: int = opt(6, "ours", "tics per action (blog: 12, where no policy averages > 79.3)",
                            ge=1)
    resolution: tuple[int, ...] = opt((30, 45), "blog", "observation size (h, w) in px", ge=8)
    frame_stack: int = opt(1, "blog", "frames per observation", ge=1)
    actions: Literal["all", "single"] = opt("all", "blog", "every button combination, or one button "
                                            "at a time")
    n_envs: int = opt(1, "ours", "environments played side by side", ge=1)
    async_envs: bool = opt(True, "ours", "play in a worker process while the net learns")
    # --- schedule ---
    epochs: int = opt(8, "ours", "epochs of training steps then test episodes (blog: 20)", ge=0)
    steps_per_epoch: int = opt(3000, "ours", "environment steps per epoch (blog: 2,000)", ge=1)
    test_episodes: int = opt(100, "blog", "greedy test episodes after each epoch", ge=1)
    test_epsilon: float = opt(0.0, "blog", "ε of the test episodes (greedy: 0)", ge=0, le=1)
    eps_start: float = opt(1.0, "blog", "ε at the start of training", ge=0, le=1)
    eps_end: float = opt(0.1, "blog", "ε after the decay", ge=0, le=1)
    eps_hold_frac: float = opt(0.1, "blog", "ε stays at eps_start for this share of training", ge=0,
                               le=1)
    eps_decay_end_frac: float = opt(0.6, "blog", "linear decay ends at this share of training", ge=0,
                                    le=1)
    eps_per_epoch: bool = opt(False, "ours", "ε changes once per epoch (blog: True) or every step")
    # --- learning ---
    net: Literal["blog", "large"] = opt("blog", "blog", "conv 8@6×6 s3 → conv 8@3×3 s2 → fc 128, "
                                        "or a larger net")
    dueling: bool = opt(True, "ours", "dueling value/advantage head (blog: no)")
    optimizer: Literal["sgd", "adam"] = opt("adam", "ours", "optimizer (blog: sgd)")
    lr: float = opt(1e-3, "ours", "learning rate (blog: 0.00025)", gt=0)
    lr_schedule: Literal["constant", "cosine"] = opt("cosine", "ours", "LR schedule (blog: constant)")
    lr_min_frac: float = opt(0.1, "ours", "the cosine ends at lr × this", ge=0, le=1)
    loss: Literal["mse_all", "mse", "huber"] = opt("huber", "ours", "TD loss (blog: mse_all)")
    double: bool = opt(True, "ours", "Double DQN targets (blog: no)")
    target_update_steps: int = opt(500, "ours", "target network sync period (blog: 0, none)", ge=0)
    grad_clip_norm: float = opt(10.0, "ours", "gradient norm clip (blog: 0, none)", ge=0)
    reward_scale: float = opt(0.01, "ours", "reward multiplier: scores ≈ ±100 → TD errors ≈ ±1 "
                              "(blog: 1)", gt=0)
    gamma: float = opt(0.99, "blog", "discount", ge=0, le=1)
    n_step: int = opt(3, "ours", "n-step returns (blog: 1)", ge=1)
    batch_size: int = opt(64, "blog", "replay minibatch size", ge=1)
    replay_capacity: int = opt(10_000, "blog", "transitions kept in the replay memory", ge=1)
    learning_starts: int = opt(64, "blog", "learn once this many transitions are stored", ge=1)
    updates_per_step: float = opt(1.0, "blog", "gradient updates per environment step", gt=0)
    torch_threads: int = opt(1, "ours", "torch threads (2 are much slower for this net under load)",
                             ge=1)
    random_policy: bool = opt(False, "ours", "no learning: test uniformly random actions")
    checkpoint_replay: bool = opt(True, "ours", "resume with the replay memory as it was")

    def validate(self) -> None:
        if len(self.resolution) != 2:
            raise ValueError(f"resolution must be two integers (h, w), got {self.resolution}")
        if self.epochs == 0 and not self.random_policy:
            raise ValueError("epochs must be >= 1 (0 only with random_policy)")


BLOG = {"frame_repeat": 12, "epochs": 20, "steps_per_epoch": 2000, "n_step": 1,
        "eps_per_epoch": True, "dueling": False, "optimizer": "sgd", "lr": 0.00025, "loss": "mse_all",
        "double": False, "target_update_steps": 0, "grad_clip_norm": 0.0,
        "reward_scale": 1.0, "lr_schedule": "constant", "async_envs": False}
PRESETS = {
    "quick": Preset({"epochs": 2, "steps_per_epoch": 100, "test_episodes": 3, "replay_capacity": 1000},
                    "smoke test: 2 × 100 steps", "seconds"),
    "blog": Preset(BLOG, "the blog's algorithm and schedule (20 × 2,000 steps)",
                   "≈ 6 min on a 2-core CPU"),
    "random": Preset({"epochs": 0, "random_policy": True, "frame_repeat": 12},
                     "uniformly random actions at the blog's frame repeat", "seconds"),
}


def _env_seed(seed: int, epoch: int, test: bool) -> int:
    # Each epoch's episodes depend only on (seed, epoch, train/test), so a resumed run plays the
    # same monsters as an uninterrupted one.
    return (seed * 1_000_003 + epoch * 2 + test) % 2**31


def run(cfg: Config, ctx: RunContext) -> dict:
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

        def state() -> dict:
            return {"agent": agent.state_dict(),
                    "replay": memory.state_dict() if cfg.checkpoint_replay else None}

        def load_state(saved: dict) -> None:
            agent.load_state_dict(saved["agent"])
            if saved["replay"] is not None:
                memory.load_state_dict(saved["replay"])

        total_steps = cfg.epochs * cfg.steps_per_epoch
        eps_kw = {"start": cfg.eps_start, "end": cfg.eps_end, "hold_frac": cfg.eps_hold_frac,
                  "decay_end_frac": cfg.eps_decay_end_frac}

        def epoch_step(epoch: int) -> dict:
            def eps_at(k: int) -> float:
                done = epoch * cfg.steps_per_epoch + (0 if cfg.eps_per_epoch else k)
                return epsilon(done / total_steps, **eps_kw)

            start = time.perf_counter()
            train = learning_steps(agent, envs, memory, cfg.steps_per_epoch, epsilon_at=eps_at,
                                   batch_size=cfg.batch_size, learning_starts=cfg.learning_starts,
                                   updates_per_step=cfg.updates_per_step,
                                   seed=_env_seed(ctx.seed, epoch, False),
                                   progress=f"epoch {epoch + 1}/{cfg.epochs}" if ctx.verbose else None)
            test_start = time.perf_counter()
            scores = evaluate(greedy_policy(agent, cfg.test_epsilon), envs, cfg.test_episodes,
                              seed=_env_seed(ctx.seed, epoch, True))
            row = {**_score_stats("test_score", scores), **_score_stats("train_score", train["scores"]),
                   "epsilon": eps_at(0), "loss": train["loss"], "updates": train["updates"],
                   "train_steps_per_s": train["steps"] / train["time_s"],
                   "train_time_s": train["time_s"], "test_time_s": time.perf_counter() - test_start,
                   "time_s": time.perf_counter() - start}
            ctx.log(f"epoch {epoch + 1}/{cfg.epochs}: test {row['test_score_mean']:.1f} ± "
                    f"{row['test_score_std']:.1f}, {row['train_episodes']} training episodes "
                    f"(ε {row['epsilon']:.2f}), loss {row['loss']:.4g}, "
                    f"{row['train_steps_per_s']:.0f} steps/s, {row['time_s']:.1f} s")
            return row

        # The run's lifecycle: a history row and a checkpoint after every epoch; resumes exactly.
        rows = ctx.epochs(cfg.epochs, epoch_step, state=state, load_state=load_state)
    finally:
        envs.close()
        torch.set_num_threads(threads)

    plot_scores(rows, ctx.run_dir.plot_path("learning_curve.png"), f"DQN on ViZDoom {cfg.scenario}")
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


EXPERIMENT = Experiment(
    name="dqn-vizdoom-basic", config=Config, run=run, presets=PRESETS, summary=__doc__.splitlines()[0],
    claim="mean test score 66.3 after 20 × 2,000 steps (blog's program); target ≥ 82 in ≤ 5 min",
    headline=("test_score",), play=play, requires=("vizdoom", "gymnasium"), extra="rl")
