"""Deep Q-learning on any ViZDoom scenario, judged against random play on the same test episodes.

Claim: none in the blog, which trains on basic only. One agent configuration (the improved DQN of
dqn-vizdoom-basic, with an action set built from the scenario's buttons without contradictory
pairs, and rewards divided by the spread of the returns) should beat uniformly random actions,
played at the same frame repeat with the same actions on the same episode seeds, by ≥ 3 standard
errors on every scenario of the development set (basic, defend_the_center, defend_the_line,
deadly_corridor, predict_position, my_way_home). Measured: docs/results.md.
Run:   mlrepro run dqn-vizdoom --scenario defend_the_line --seeds 0,1,2
       Quick: mlrepro run dqn-vizdoom --quick
       python benchmarks/dqn_vizdoom_sweep.py runs     (the table and learning curves of the sweeps)
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

DEVELOPMENT_SET = (
    "basic",
    "defend_the_center",
    "defend_the_line",
    "deadly_corridor",
    "predict_position",
    "my_way_home",
)


@dataclass(frozen=True)
class Config(ExperimentConfig):
    # --- environment ---
    scenario: str = opt(
        "basic", "blog", "a shipped scenario (basic, defend_the_center, ...) or a path to a .cfg"
    )
    frame_repeat: int = opt(6, "ours", "tics per action (blog: 12)", ge=1)
    resolution: tuple[int, ...] = opt((30, 45), "blog", "observation size (h, w) in px", ge=8)
    frame_stack: int = opt(
        1,
        "blog",
        "frames per observation (Atari DQN: 4, which without --center-inputs killed the "
        "net's first layer on basic: docs/results.md)",
        ge=1,
    )
    actions: Literal["combos", "all", "single"] = opt(
        "combos",
        "ours",
        "every button combination without contradictory pairs (left + right), "
        "every combination (blog), or one button at a time",
    )
    max_buttons: int = opt(
        0, "ours", "with combos: at most this many buttons at once (0: any)", ge=0
    )
    seed_episodes: bool = opt(
        True,
        "ours",
        "seed every episode, so that the agent and the random "
        "baseline meet the same draws episode by episode",
    )
    n_envs: int = opt(1, "ours", "environments played side by side", ge=1)
    async_envs: bool = opt(True, "ours", "play in a worker process while the net learns")
    # --- schedule ---
    epochs: int = opt(10, "ours", "epochs of training steps then test episodes", ge=0)
    steps_per_epoch: int = opt(10_000, "ours", "environment steps per epoch", ge=1)
    test_episodes: int = opt(20, "ours", "test episodes after each epoch", ge=1)
    final_test_episodes: int = opt(
        100,
        "blog",
        "test episodes after the last epoch, and of the random baseline (0: test_episodes)",
        ge=0,
    )
    test_epsilon: float = opt(
        0.05,
        "paper: Mnih et al. 2015",
        "ε of the test episodes (a greedy policy can loop against a wall forever)",
        ge=0,
        le=1,
    )
    eps_start: float = opt(1.0, "blog", "ε at the start of training", ge=0, le=1)
    eps_end: float = opt(0.1, "blog", "ε after the decay", ge=0, le=1)
    eps_hold_frac: float = opt(
        0.1, "blog", "ε stays at eps_start for this share of training", ge=0, le=1
    )
    eps_decay_end_frac: float = opt(
        0.6, "blog", "linear decay ends at this share of training", ge=0, le=1
    )
    eps_per_epoch: bool = opt(False, "ours", "ε changes once per epoch (blog: True) or every step")
    explore: Literal["epsilon", "ez"] = opt(
        "epsilon",
        "paper: Dabney et al. 2021",
        "random actions one step at a time (ε-greedy), or held for a zeta-distributed number of "
        "steps (εz-greedy: with probability ε start holding a random action; rl/dqn.py EzGreedy)",
    )
    ez_mu: float = opt(
        2.0, "paper: Dabney et al. 2021", "with explore=ez: P(n steps) ∝ n^-mu", gt=0
    )
    ez_max_steps: int = opt(100, "ours", "with explore=ez: the longest hold", ge=1)
    # --- learning ---
    net: Literal["blog", "large"] = opt(
        "blog", "blog", "conv 8@6×6 s3 → conv 8@3×3 s2 → fc 128, or a larger net"
    )
    dueling: bool = opt(True, "ours", "dueling value/advantage head (blog: no)")
    center_inputs: bool = opt(
        False,
        "ours",
        "subtract each frame's mean brightness before the net, so that its first layer cannot "
        "die all at once (rl/qnet.py)",
    )
    optimizer: Literal["sgd", "adam"] = opt("adam", "ours", "optimizer (blog: sgd)")
    lr: float = opt(1e-3, "ours", "learning rate (blog: 0.00025)", gt=0)
    lr_schedule: Literal["constant", "cosine"] = opt(
        "cosine", "ours", "LR schedule (blog: constant)"
    )
    lr_min_frac: float = opt(0.1, "ours", "the cosine ends at lr × this", ge=0, le=1)
    loss: Literal["mse_all", "mse", "huber"] = opt("huber", "ours", "TD loss (blog: mse_all)")
    double: bool = opt(True, "ours", "Double DQN targets (blog: no)")
    target_update_steps: int = opt(500, "ours", "target network sync period (blog: 0, none)", ge=0)
    grad_clip_norm: float = opt(10.0, "ours", "gradient norm clip (blog: 0, none)", ge=0)
    reward_norm: Literal["returns", "rewards", "clip", "none"] = opt(
        "returns",
        "ours",
        "divide rewards by max(1, σ of the discounted return, or of the "
        "rewards, while ε = eps_start), clip them to [-1, 1] (Atari DQN), or neither "
        "(rl/rewards.py)",
    )
    reward_scale: float = opt(
        1.0, "ours", "a fixed reward multiplier on top of reward_norm (blog: 1)", gt=0
    )
    shot_cost: float = opt(
        0.0,
        "ours",
        "training reward lost per round of ammunition fired (0: none); scores stay the "
        "scenario's own (rl/env.py, DoomEnv costs)",
        ge=0,
    )
    damage_cost: float = opt(
        0.0, "ours", "training reward lost per health point lost (0: none); scores unchanged", ge=0
    )
    gamma: float = opt(0.99, "blog", "discount", ge=0, le=1)
    n_step: int = opt(3, "ours", "n-step returns (blog: 1)", ge=1)
    batch_size: int = opt(64, "blog", "replay minibatch size", ge=1)
    replay_capacity: int = opt(
        20_000, "ours", "transitions kept in the replay memory (blog: 10,000)", ge=1
    )
    learning_starts: int = opt(
        1000, "ours", "learn once this many transitions are stored (blog: 64)", ge=1
    )
    updates_per_step: float = opt(1.0, "blog", "gradient updates per environment step", gt=0)
    torch_threads: int = opt(
        1, "ours", "torch threads (2 are much slower for this net under load)", ge=1
    )
    random_policy: bool = opt(False, "ours", "no learning: test uniformly random actions")
    random_baseline: bool = opt(
        True,
        "ours",
        "after the last epoch, also test uniformly random "
        "actions on the same episode seeds, frame repeat and actions",
    )
    checkpoint_replay: bool = opt(True, "ours", "resume with the replay memory as it was")
    keep_best: bool = opt(
        False,
        "ours",
        "give the final test to the weights of the epoch whose own test episodes scored best "
        "(validation), not to the last epoch's; the final test and the random baseline then "
        "play episode seeds that no epoch played",
    )

    def validate(self) -> None:
        from ..rl.scenarios import resolve_scenario, scenarios_path

        if len(self.resolution) != 2:
            raise ValueError(f"resolution must be two integers (h, w), got {self.resolution}")
        if self.epochs == 0 and not self.random_policy:
            raise ValueError("epochs must be >= 1 (0 only with random_policy)")
        if scenarios_path() is not None:  # without vizdoom, `requires` names the missing extra
            resolve_scenario(self.scenario)

    @property
    def last_test_episodes(self) -> int:
        return self.final_test_episodes or self.test_episodes


PRESETS = {
    "quick": Preset(
        {
            "epochs": 2,
            "steps_per_epoch": 100,
            "test_episodes": 2,
            "final_test_episodes": 3,
            "replay_capacity": 1000,
            "learning_starts": 64,
        },
        "smoke test: 2 × 100 steps, 3 test and 3 random episodes",
        "seconds",
    ),
    "shot-cost": Preset(
        {"shot_cost": 0.3},
        "the default, and 0.3 of training reward lost per round fired: for scenarios where "
        "the ammunition runs out (defend_the_center); scores stay the scenario's own",
        "12-15 min on defend_the_center (1 thread)",
    ),
    "shot-cost-long": Preset(
        {"shot_cost": 0.3, "epochs": 20},
        "shot-cost with twice the steps (20 × 10,000): its test score still rises at epoch 10",
        "22-28 min on defend_the_center (1 thread)",
    ),
    "shot-cost-best": Preset(
        {"shot_cost": 0.3, "epochs": 20, "keep_best": True},
        "shot-cost-long, with the final test given to the epoch that scored best on its own "
        "20 test episodes: the last epoch's policy is often not the best (docs/results.md)",
        "23-29 min on defend_the_center (1 thread)",
    ),
    "random": Preset(
        {"epochs": 0, "random_policy": True},
        "uniformly random actions at the agent's frame repeat, with its actions",
        "seconds to a minute",
    ),
}


def _env_seed(seed: int, epoch: int, test: bool, spaced: bool = False) -> int:
    # Each epoch's episodes depend only on (seed, epoch, train/test), so a resumed run plays the
    # same monsters as an uninterrupted one. With seeded episodes (episode k plays seed base + k)
    # the bases are spaced apart, so that no test episode replays a training one.
    base = (seed * 1_000_003 + epoch * 2 + test) % 2**31
    return base * 1_000_033 % 2**31 if spaced else base


def env_options(cfg: Config) -> dict:
    """What makes a run's environment: the same for training, `play` and diagnostics."""
    return {
        "scenario": cfg.scenario,
        "frame_repeat": cfg.frame_repeat,
        "resolution": cfg.resolution,
        "frame_stack": cfg.frame_stack,
        "actions": cfg.actions,
        "max_buttons": cfg.max_buttons,
    }


def build_qnet(cfg: Config, n_actions: int):
    """The run's Q-net, untrained (its checkpoint's `agent.q` weights fit it)."""
    from ..rl import QNet

    return QNet(
        n_actions,
        in_channels=cfg.frame_stack,
        resolution=cfg.resolution,
        arch=cfg.net,
        dueling=cfg.dueling,
        center=cfg.center_inputs,
    )


def _score_stats(prefix: str, scores: list[float]) -> dict:
    a = np.asarray(scores, dtype=np.float64)
    count = f"{prefix.split('_')[0]}_episodes"
    if a.size == 0:
        return {f"{prefix}_mean": None, f"{prefix}_std": None, count: 0}
    se = float(a.std(ddof=1) / np.sqrt(a.size)) if a.size > 1 else None
    return {
        f"{prefix}_mean": float(a.mean()),
        f"{prefix}_std": float(a.std()),
        f"{prefix}_se": se,
        f"{prefix}_min": float(a.min()),
        f"{prefix}_max": float(a.max()),
        count: int(a.size),
    }


def _random_scores(cfg: Config, envs, seed: int, epoch: int) -> list[float]:
    """Uniformly random actions of the agent's action set, on the agent's environments (so at its
    frame repeat) and epoch `epoch`'s test seeds (the final test's): the like-for-like baseline of
    every score."""
    from ..rl import train

    n_actions = int(envs.single_action_space.n)
    return train.evaluate(
        train.random_policy(n_actions, seed),
        envs,
        cfg.last_test_episodes,
        seed=_env_seed(seed, epoch, True, cfg.seed_episodes),
    )


def run(cfg: Config, ctx: RunContext) -> dict:
    from ..rl import DQN, ReplayMemory, epsilon, train
    from ..rl.env import make_vector_env
    from ..rl.rewards import RewardNorm

    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads)
    envs = make_vector_env(
        cfg.n_envs,
        asynchronous=cfg.async_envs,
        **env_options(cfg),
        seed_episodes=cfg.seed_episodes,
        costs={"AMMO": cfg.shot_cost, "HEALTH": cfg.damage_cost},
        work_dir=ctx.run_dir.path / "vizdoom",
    )
    title = f"DQN on ViZDoom {cfg.scenario}"
    try:
        obs_shape = envs.single_observation_space.shape
        n_actions = int(envs.single_action_space.n)
        if cfg.random_policy:
            row = {"epoch": 0, **_score_stats("test_score", _random_scores(cfg, envs, ctx.seed, 0))}
            ctx.run_dir.write_history([row])
            plot_scores([row], ctx.run_dir.plot_path("learning_curve.png"), "random policy")
            return {
                "test_score": row["test_score_mean"],
                "test_score_std": row["test_score_std"],
                "test_score_se": row["test_score_se"],
                "n_actions": n_actions,
                "epochs": 0,
            }

        gen = torch.Generator().manual_seed(ctx.seed)
        q = build_qnet(cfg, n_actions)
        total_steps = cfg.epochs * cfg.steps_per_epoch
        agent = DQN(
            q,
            lr=cfg.lr,
            gamma=cfg.gamma,
            optimizer=cfg.optimizer,
            loss=cfg.loss,
            double=cfg.double,
            target_update_steps=cfg.target_update_steps,
            grad_clip_norm=cfg.grad_clip_norm,
            reward_scale=cfg.reward_scale,
            lr_decay_updates=(
                round(total_steps * cfg.updates_per_step) if cfg.lr_schedule == "cosine" else 0
            ),
            lr_min_frac=cfg.lr_min_frac,
            n_step=cfg.n_step,
            device=ctx.device,
            generator=gen,
        )
        memory = ReplayMemory(cfg.replay_capacity, obs_shape, device=ctx.device, generator=gen)
        # σ of the returns is measured while ε = eps_start (random play), then frozen.
        hold = max(round(cfg.eps_hold_frac * total_steps), cfg.learning_starts)
        norm = RewardNorm(
            cfg.reward_norm, cfg.n_envs, cfg.gamma, scale=cfg.reward_scale, freeze_after=hold
        )

        # keep_best: the weights of the epoch with the best test score so far (its own test
        # episodes serve as validation; the final test plays seeds no epoch played).
        best: dict = {"score": None, "epoch": None, "q": None}

        def state() -> dict:
            return {
                "agent": agent.state_dict(),
                "rewards": norm.state_dict(),
                "replay": memory.state_dict() if cfg.checkpoint_replay else None,
                "best": dict(best) if cfg.keep_best and best["q"] is not None else None,
            }

        def load_state(saved: dict) -> None:
            agent.load_state_dict(saved["agent"])
            if saved.get("rewards") is not None:
                norm.load_state_dict(saved["rewards"])
            agent.reward_scale = norm.scale
            if saved["replay"] is not None:
                memory.load_state_dict(saved["replay"])
            if saved.get("best") is not None:
                best.update(saved["best"])

        eps_kw = {
            "start": cfg.eps_start,
            "end": cfg.eps_end,
            "hold_frac": cfg.eps_hold_frac,
            "decay_end_frac": cfg.eps_decay_end_frac,
        }

        def epoch_step(epoch: int) -> dict:
            def eps_at(k: int) -> float:
                done = epoch * cfg.steps_per_epoch + (0 if cfg.eps_per_epoch else k)
                return epsilon(done / total_steps, **eps_kw)

            start = time.perf_counter()
            out = train.learning_steps(
                agent,
                envs,
                memory,
                cfg.steps_per_epoch,
                epsilon_at=eps_at,
                batch_size=cfg.batch_size,
                learning_starts=cfg.learning_starts,
                updates_per_step=cfg.updates_per_step,
                seed=_env_seed(ctx.seed, epoch, False, cfg.seed_episodes),
                progress=f"epoch {epoch + 1}/{cfg.epochs}" if ctx.verbose else None,
                reward_norm=norm,
                ez_greedy=(cfg.ez_mu, cfg.ez_max_steps) if cfg.explore == "ez" else None,
            )
            last = epoch + 1 == cfg.epochs
            test_start = time.perf_counter()
            policy = train.greedy_policy(agent, cfg.test_epsilon)
            scores = train.evaluate(
                policy,
                envs,
                cfg.last_test_episodes if last and not cfg.keep_best else cfg.test_episodes,
                seed=_env_seed(ctx.seed, epoch, True, cfg.seed_episodes),
            )
            row = {
                **_score_stats("test_score", scores),
                **_score_stats("train_score", out["scores"]),
                "epsilon": eps_at(0),
                "loss": out["loss"],
                "updates": out["updates"],
                "reward_scale": agent.reward_scale,
                "train_steps_per_s": out["steps"] / out["time_s"],
                "train_time_s": out["time_s"],
            }
            final_epoch = epoch  # whose test seeds the final test and the random baseline play
            if cfg.keep_best:
                if best["score"] is None or row["test_score_mean"] >= best["score"]:  # ties: later
                    q_now = {k: v.detach().clone() for k, v in agent.q.state_dict().items()}
                    best.update(score=row["test_score_mean"], epoch=epoch + 1, q=q_now)
                if last:
                    # The finished run's model is the selected one: the checkpoint saved after
                    # this epoch, and so `mlrepro play`, hold these weights.
                    agent.q.load_state_dict(best["q"])
                    final_epoch = cfg.epochs  # an epoch index no epoch used: fresh seeds
                    final = train.evaluate(
                        policy,
                        envs,
                        cfg.last_test_episodes,
                        seed=_env_seed(ctx.seed, final_epoch, True, cfg.seed_episodes),
                    )
                    row.update(_score_stats("final_score", final))
                    row["selected_epoch"] = best["epoch"]
                    best.update(score=None, epoch=None, q=None)  # not kept in the last checkpoint
            row["test_time_s"] = time.perf_counter() - test_start
            if last and cfg.random_baseline:
                row.update(
                    _score_stats("random_score", _random_scores(cfg, envs, ctx.seed, final_epoch))
                )
            row["time_s"] = time.perf_counter() - start
            ctx.log(
                f"epoch {epoch + 1}/{cfg.epochs}: test {row['test_score_mean']:.2f} ± "
                f"{row['test_score_std']:.2f}"
                + (
                    f" (final test of epoch {row['selected_epoch']}'s weights: "
                    f"{row['final_score_mean']:.2f})"
                    if "final_score_mean" in row
                    else ""
                )
                + (
                    f" (random {row['random_score_mean']:.2f})"
                    if "random_score_mean" in row
                    else ""
                )
                + f", {row['train_episodes']} training episodes (ε {row['epsilon']:.2f}), "
                f"loss {row['loss']:.4g}, {row['train_steps_per_s']:.0f} steps/s, "
                f"{row['time_s']:.1f} s"
            )
            return row

        # The run's lifecycle: a history row and a checkpoint after every epoch; resumes exactly.
        rows = ctx.epochs(cfg.epochs, epoch_step, state=state, load_state=load_state)
    finally:
        envs.close()
        torch.set_num_threads(threads)

    last = rows[-1]
    if last.get("random_score_mean") is not None:
        title += f" (random: {last['random_score_mean']:.2f})"
    plot_scores(rows, ctx.run_dir.plot_path("learning_curve.png"), title)
    test = "final_score" if "final_score_mean" in last else "test_score"
    return {
        "test_score": last[f"{test}_mean"],
        "test_score_std": last[f"{test}_std"],
        "test_score_se": last.get(f"{test}_se"),
        **({"selected_epoch": last["selected_epoch"]} if "selected_epoch" in last else {}),
        **_versus_random(last, test),
        "best_test_score": max(r["test_score_mean"] for r in rows),
        "n_actions": n_actions,
        "reward_scale": last.get("reward_scale"),
        "train_steps_per_s": float(np.mean([r["train_steps_per_s"] for r in rows])),
        "train_time_s": sum(r["train_time_s"] for r in rows),
        "test_time_s": sum(r["test_time_s"] for r in rows),
        "epochs": last["epoch"],
    }


def _versus_random(row: dict, test: str = "test_score") -> dict:
    """The random baseline beside the score (`test`: the row's final test), and their difference in
    standard errors."""
    if row.get("random_score_mean") is None:
        return {}
    out = {
        "random_score": row["random_score_mean"],
        "random_score_std": row["random_score_std"],
        "random_score_se": row.get("random_score_se"),
    }
    se_t, se_r = row.get(f"{test}_se"), row.get("random_score_se")
    if se_t is not None and se_r is not None:
        se = float(np.hypot(se_t, se_r))
        diff = row[f"{test}_mean"] - row["random_score_mean"]
        out["beats_random_by_se"] = diff / se if se > 0 else None  # (mean − random) / s.e.
    return out


def play(
    cfg: Config, run_dir, *, episodes: int = 10, gif=None, seed: int = 0, fps: float = 35.0
) -> dict:
    """Greedy episodes of a run's last checkpoint, and a GIF of every tic (`mlrepro play`)."""
    import tempfile

    from ..rl.env import DoomEnv
    from ..rl.play import play_episodes, write_gif

    state = run_dir.load_checkpoint()
    if state is None:
        raise FileNotFoundError(f"{run_dir.path} has no checkpoint to play")
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads)
    with tempfile.TemporaryDirectory(prefix="vizdoom-play-") as work_dir:
        env = DoomEnv(
            **env_options(cfg),
            work_dir=work_dir,
            # tic-by-tic screens only for a GIF: 100 episodes of basic would hold ~1.3 GB of them
            render_mode="rgb_array" if gif is not None else None,
        )
        try:
            q = build_qnet(cfg, int(env.action_space.n))
            q.load_state_dict(state["agent"]["q"])
            q.eval()

            taken: list[np.ndarray] = []

            def policy(obs):
                with torch.no_grad():
                    actions = q(torch.as_tensor(obs).float().div_(255)).argmax(dim=1).numpy()
                taken.append(actions)
                return actions

            scores, screens = play_episodes(policy, env, episodes, seed=seed)
            labels = [
                "+".join(b for b, on in zip(env.buttons, action) if on) or "no-op"
                for action in env.actions
            ]
        finally:
            env.close()
            torch.set_num_threads(threads)
    if gif is not None:
        write_gif(screens, gif, fps=fps)
    counts = np.bincount(np.concatenate(taken), minlength=len(labels)) if taken else []
    return {
        "scores": scores,
        "mean_score": float(np.mean(scores)),
        "frames": len(screens),
        "epoch": state["epoch"],
        # what the policy does: each action's share of the steps, most frequent first
        "actions": {
            labels[i]: int(counts[i]) for i in np.argsort(-np.asarray(counts), kind="stable")
        },
        "steps_per_episode": sum(len(a) for a in taken) / max(len(scores), 1),
    }


def _folder_tag(cfg: Config) -> str:
    from ..rl.scenarios import scenario_tag

    return scenario_tag(cfg.scenario)


EXPERIMENT = Experiment(
    name="dqn-vizdoom",
    config=Config,
    run=run,
    presets=PRESETS,
    summary=__doc__.splitlines()[0],
    claim="beats random play at the same frame repeat and actions by ≥ 3 standard errors on each "
    "development scenario (ours)",
    headline=("test_score", "random_score"),
    play=play,
    requires=("vizdoom", "gymnasium"),
    extra="rl",
    reproduce="mlrepro run dqn-vizdoom --scenario S --seeds 0,1,2",
    folder_tag=_folder_tag,
)
