"""Exact best score per seed on ViZDoom "basic", over the agent's actions (branch and bound).

ViZDoom is deterministic: the same seed and the same actions give the same episode. For every seed
this script searches the sequences of actions (each held for `--frame-repeat` tics, as the agent
holds them) and proves the best total reward any policy can get, learned or not:

* Actions: the agent's own set, `action_table(3, "all")`: all 8 on/off combinations of MOVE_LEFT,
  MOVE_RIGHT and ATTACK, the no-op included (`--actions single` for the 3 one-button actions).
* Rewards, from the scenario itself (basic.cfg and the SCRIPTS lump of basic.wad): -1 per tic
  (living reward), -5 for every bullet fired (script 3 compares the clip every tic), +106 when the
  monster dies (script 4, which ends the level). The monster has 1 health point and never moves,
  and bullets are hitscan, so a kill is a bullet fired in the tic of the kill.
* Bound: an unfinished prefix with total R can still earn at most R + 106 - 5 - t, where t >= 1
  is the number of tics up to and including the kill (each costs 1). `--bound rewards` uses only
  t >= 1, which follows from the rewards alone. The default, `--bound engine`, also uses two
  facts of the engine that make t larger:
  - the pistol fires 4 tics after the trigger is pulled (Pistol: `PISG A 4`, then
    `A_FirePistol`), so after a step without ATTACK (frame repeat >= 4) the next bullet comes in
    the 5th tic at the earliest;
  - a bullet can only hit if the player's y is within 80 units of the monster's: the monster's
    radius (31) plus the pistol's widest spread (5.6 degrees) over the 415 units to the far side
    of the monster (40.7), plus one tic of movement (8). The player strafes at most 8 units per
    tic (thrust 0.75, friction 0.90625: 0.75 / (1 - 0.90625)), so a kill is at least
    ceil((|dy| - 80) / 8) tics away.
  The search is best-first on the bound, and a seed is done when no open prefix can beat the
  best kill found. Every prefix is replayed from `new_episode()` with the seed, so no saved state
  is trusted; each step of the search costs one replayed episode.
* Checks, per seed: the best sequence is replayed once more, tic by tic; it must give the same
  total, end with a kill tic of reward 106 - 5 - 1 = 100 (the accounting the bound relies on),
  and satisfy total = 106 - 5 * bullets - tics. Over every kill of the search, the widest
  |y_player - y_monster| is printed against the 80 the engine bound assumes; and
  `--bound rewards` finds the same optima (checked for every seed at frame repeat 12).

The mean over seeds bounds the mean test score of every policy at that frame repeat on those
seeds; the printed target is 98 % of it.

`--runs RUN_DIR ...` then plays each trained agent (a dqn-vizdoom-basic or dqn-vizdoom run on
basic) greedily on the same seeds, episode k seeded first_seed + k as `mlrepro play RUN_DIR
--seed FIRST --episodes N` does, and prints its mean score as a share of the optimum on those
seeds. An agent scoring above a seed's proven optimum stops the script with an error: the proof
or the replay would be wrong.

Run:   python benchmarks/vizdoom_basic_ceiling.py                       (frame repeats 12 and 6)
       python benchmarks/vizdoom_basic_ceiling.py --frame-repeat 12 --seeds 10
       python benchmarks/vizdoom_basic_ceiling.py --frame-repeat 6 --runs runs/dqn-vizdoom-basic/*
"""

from __future__ import annotations

import argparse
import heapq
import multiprocessing
import multiprocessing.util
import os
import tempfile
import time
from pathlib import Path

import numpy as np

KILL, BULLET = 106.0, 5.0  # basic.wad, SCRIPTS: scripts 4 and 3
FUTURE_MAX = KILL - BULLET - 1.0  # the most an unfinished episode can still gain
PISTOL_TICS = 5  # a bullet comes in the 5th tic after the trigger is pulled (PISG A 4)
HIT_REACH = 31.0 + 40.7 + 8.0  # units of |y_player - y_monster| within which a bullet can hit
MAX_STRAFE = 0.75 / (1.0 - 0.90625)  # units per tic: thrust / (1 - friction) = 8


def make_game(objects_info: bool = False):
    """A headless DoomGame for "basic", as the agent's environment configures it (plus the
    positions of objects if asked: only the probe that locates the monster asks)."""
    import vizdoom as vzd

    from mlrepro.rl.env import _working_dir, scenario_config

    work = tempfile.mkdtemp(prefix="vizdoom-ceiling-")
    game = vzd.DoomGame()
    game.load_config(str(scenario_config("basic")))
    game.set_doom_config_path(f"{work}/_vizdoom.ini")
    game.set_window_visible(False)
    game.set_sound_enabled(False)
    game.set_mode(vzd.Mode.PLAYER)
    game.set_screen_format(vzd.ScreenFormat.GRAY8)
    game.set_screen_resolution(vzd.ScreenResolution.RES_160X120)
    game.set_objects_info_enabled(objects_info)
    with _working_dir(work):
        game.init()
    return game


class Replayer:
    """Plays action sequences from the start of a seeded episode."""

    def __init__(self, game, actions: np.ndarray, frame_repeat: int):
        import vizdoom as vzd

        self.game = game
        self.actions = [list(map(int, a)) for a in actions]
        self.attacks = [bool(a[2]) for a in actions]  # buttons: MOVE_LEFT, MOVE_RIGHT, ATTACK
        self.frame_repeat = frame_repeat
        self.episodes = 0
        self._y = vzd.GameVariable.POSITION_Y

    def play(self, seed: int, seq) -> tuple[float, bool, bool, float]:
        """(total reward, episode finished, finished by a kill, player's y at the end)."""
        game = self.game
        game.set_seed(seed)
        game.new_episode()
        self.episodes += 1
        for a in seq:
            game.make_action(self.actions[a], self.frame_repeat)
            if game.is_episode_finished():
                break
        done = game.is_episode_finished()
        killed = done and not game.is_episode_timeout_reached() and not game.is_player_dead()
        return game.get_total_reward(), done, killed, game.get_game_variable(self._y)

    def per_tic(self, seed: int, seq) -> tuple[list[float], float]:
        """The rewards of every tic of `seq` and the bullets left at the end."""
        import vizdoom as vzd

        game = self.game
        game.set_seed(seed)
        game.new_episode()
        rewards = []
        for a in seq:
            for _ in range(self.frame_repeat):
                if game.is_episode_finished():
                    break
                rewards.append(game.make_action(self.actions[a], 1))
        return rewards, game.get_game_variable(vzd.GameVariable.AMMO2)


_ENGINES: dict = {}  # per process: the searching engine, the probe, and one Replayer per setting


def _engine(name: str):
    if name not in _ENGINES:
        _ENGINES[name] = make_game(objects_info=name == "probe")
    return _ENGINES[name]


def close_engines() -> None:
    """Close this process's engines (each is a child process that outlives its parent)."""
    for game in _ENGINES.values():
        if hasattr(game, "close"):
            game.close()
    _ENGINES.clear()


def monster_y(seed: int) -> float:
    """Where the monster stands in this seed's episode (it never moves)."""
    import vizdoom as vzd

    game = _engine("probe")
    game.set_seed(seed)
    game.new_episode()
    (y,) = [o.position_y for o in game.get_state().objects if o.name == "Cacodemon"]
    assert game.get_game_variable(vzd.GameVariable.POSITION_Y) == 32.0  # the player's start
    return y


def upper_bound(rep: Replayer, total: float, last_action: int, dy: float, bound: str) -> float:
    """The most any continuation of an unfinished prefix can end with (see the module doc)."""
    tics = 1
    if bound == "engine":
        if rep.frame_repeat >= 4 and not rep.attacks[last_action]:
            tics = PISTOL_TICS
        tics = max(tics, int(np.ceil((abs(dy) - HIT_REACH) / MAX_STRAFE)))
    return total + KILL - BULLET - tics


def best_sequence(
    rep: Replayer, seed: int, bound: str = "engine"
) -> tuple[float, tuple, int, float]:
    """Branch and bound over action sequences: (optimum, a sequence reaching it, episodes
    replayed, widest |y_player - y_monster| of a kill). Best-first on the upper bound of a
    prefix; the search ends when no open prefix's bound beats the best kill found."""
    y_m = monster_y(seed)
    best, best_seq, widest = -np.inf, (), 0.0
    heap = [(-(KILL - BULLET - 1.0), 0, ())]  # (-upper bound, length, prefix)
    start = rep.episodes
    while heap:
        neg_ub, _, prefix = heapq.heappop(heap)
        if -neg_ub <= best:
            break  # the heap's best bound cannot beat `best`, so no open prefix can
        for a in range(len(rep.actions)):
            seq = (*prefix, a)
            total, done, killed, y = rep.play(seed, seq)
            if done:
                if killed:
                    widest = max(widest, abs(y - y_m))
                    if total > best:
                        best, best_seq = total, seq
                continue
            ub = upper_bound(rep, total, a, y - y_m, bound)
            if ub > best:
                heapq.heappush(heap, (-ub, len(seq), seq))
    return best, best_seq, rep.episodes - start, widest


def check(rep: Replayer, seed: int, best: float, seq) -> None:
    """Replay the optimum tic by tic: same total, and the reward accounting the bound uses."""
    rewards, ammo_left = rep.per_tic(seed, seq)
    total = sum(rewards)
    kill_tics = [i for i, r in enumerate(rewards) if r > 0]
    bullets = 50 - ammo_left  # basic starts with 50 bullets
    problems = []
    if total != best:
        problems.append(f"replayed total {total} != {best}")
    if len(kill_tics) != 1 or rewards[kill_tics[0]] != FUTURE_MAX:
        problems.append(
            f"kill-tic rewards {[rewards[i] for i in kill_tics]}, expected one {FUTURE_MAX}"
        )
    if total != KILL - BULLET * bullets - len(rewards):
        problems.append(f"total {total} != {KILL} - {BULLET} x {bullets} - {len(rewards)} tics")
    if problems:
        raise RuntimeError(f"seed {seed}: " + "; ".join(problems))


def _init_worker() -> None:
    # runs when the worker exits normally (pool.close + join), unlike atexit
    multiprocessing.util.Finalize(None, close_engines, exitpriority=10)


def _solve(job) -> tuple[int, int, float, tuple, int, float, float]:
    frame_repeat, actions_kind, bound, seed = job
    from mlrepro.rl.env import action_table

    key = (frame_repeat, actions_kind)
    if key not in _ENGINES:
        _ENGINES[key] = Replayer(_engine("search"), action_table(3, actions_kind), frame_repeat)
    rep = _ENGINES[key]
    start = time.perf_counter()
    best, seq, n, widest = best_sequence(rep, seed, bound)
    check(rep, seed, best, seq)
    return frame_repeat, seed, best, seq, n, widest, time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--frame-repeat",
        type=int,
        nargs="+",
        default=[12, 6],
        help="tics per action (agent's default preset: 6, blog: 12)",
    )
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=2000)
    parser.add_argument(
        "--actions",
        choices=["all", "single"],
        default="all",
        help="the agent's action set (DoomEnv(actions=...))",
    )
    parser.add_argument(
        "--bound",
        choices=["engine", "rewards"],
        default="engine",
        help="prune with the rewards and the engine's pistol and movement facts, "
        "or with the rewards alone (slower; the same optima)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="engines searching seeds side by side",
    )
    parser.add_argument("--quiet", action="store_true", help="no line per seed")
    parser.add_argument(
        "--runs",
        nargs="+",
        default=[],
        metavar="RUN_DIR",
        help="trained agents to play on the same seeds and compare with the optimum",
    )
    args = parser.parse_args(argv)
    agents = [load_agent(path, args) for path in args.runs]  # bad folders fail before the search

    from mlrepro.rl.env import action_table

    names = [
        "".join(b for b, on in zip("LRA", row) if on) or "-"
        for row in action_table(3, args.actions)
    ]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(f, args.actions, args.bound, s) for f in args.frame_repeat for s in seeds]
    print(
        f"ViZDoom basic: exact optimum per seed, seeds {seeds[0]}..{seeds[-1]}, actions "
        f"{args.actions} ({' '.join(names)}), bound {args.bound}, {args.workers} worker(s), "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    results: dict[int, dict[int, tuple]] = {f: {} for f in args.frame_repeat}
    start = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(args.workers, initializer=_init_worker)
    try:
        for f, seed, best, seq, n, widest, secs in pool.imap_unordered(_solve, jobs):
            results[f][seed] = (best, seq, n, widest, secs)
            if not args.quiet:
                print(
                    f"  frame repeat {f:2d}  seed {seed}  optimum {best:5.0f}  "
                    f"{' '.join(names[a] for a in seq):24s} {n:7d} episodes  {secs:6.1f} s",
                    flush=True,
                )
    finally:
        pool.close()  # not terminate(): the workers close their engines on the way out
        pool.join()
    wall = time.perf_counter() - start
    print(f"done in {wall:.0f} s, load average {os.getloadavg()[0]:.2f}")
    for f in args.frame_repeat:
        scores = np.array([results[f][s][0] for s in seeds])
        episodes = sum(results[f][s][2] for s in seeds)
        widest = max(results[f][s][3] for s in seeds)
        se = scores.std(ddof=1) / np.sqrt(len(scores)) if len(scores) > 1 else float("nan")
        print(
            f"frame repeat {f}: optimum mean {scores.mean():.2f} ± {se:.2f} (standard error; "
            f"std {scores.std(ddof=1) if len(scores) > 1 else 0:.2f}, min {scores.min():.0f}, "
            f"max {scores.max():.0f}), {episodes:,} episodes replayed; "
            f"98 % target: {0.98 * scores.mean():.2f}"
        )
        print(
            f"  widest |y_player - y_monster| of any kill found: {widest:.1f} units "
            f"(the engine bound assumes <= {HIT_REACH:.1f})"
        )
        print("  per seed: " + " ".join(f"{results[f][s][0]:.0f}" for s in seeds))
    if agents:
        compare_agents(agents, results, seeds)


def load_agent(path: str, args) -> tuple:
    """(path, experiment, config, run folder) of a finished run on basic at a searched frame
    repeat, with an action set inside the searched one; else exits with one line."""
    from mlrepro.errors import ConfigError
    from mlrepro.runfolder import load_run

    try:
        rd, _, exp, cfg = load_run(path, "--runs")
    except ConfigError as e:
        raise SystemExit(f"error: {e}") from None
    scenario = str(getattr(cfg, "scenario", ""))
    problems = []
    if exp.play is None or Path(scenario).stem != "basic":
        problems.append(f"not a ViZDoom basic run ({exp.name}, scenario {scenario or '-'})")
    elif cfg.frame_repeat not in args.frame_repeat:
        problems.append(f"frame repeat {cfg.frame_repeat}; searched: {args.frame_repeat}")
    elif args.actions == "single" and cfg.actions != "single":
        problems.append(f"actions {cfg.actions!r}, more than the searched 'single'")
    if rd.load_checkpoint() is None:
        problems.append("no checkpoint")
    if problems:
        raise SystemExit(f"error: --runs: {path}: {'; '.join(problems)}")
    return path, exp, cfg, rd


def compare_agents(agents, results, seeds) -> None:
    """Each agent's greedy score per seed against the seed's optimum, and the share of it."""
    shares = []
    print(
        f"trained agents, greedy, seeds {seeds[0]}..{seeds[-1]} (episode k seeded {seeds[0]} + k):"
    )
    for path, exp, cfg, rd in agents:
        start = time.perf_counter()
        out = exp.play(cfg, rd, episodes=len(seeds), seed=seeds[0])
        optima = np.array([results[cfg.frame_repeat][s][0] for s in seeds])
        scores = np.asarray(out["scores"], dtype=float)
        above = [(s, a, o) for s, a, o in zip(seeds, scores, optima) if a > o + 1e-6]
        if above:
            s, a, o = above[0]
            raise SystemExit(
                f"error: {path} scored {a:.0f} on seed {s}, above the proven optimum {o:.0f}"
            )
        share = scores.mean() / optima.mean()
        shares.append(share)
        gaps = optima - scores
        print(
            f"  {path}: {scores.mean():.2f} (se {scores.std(ddof=1) / np.sqrt(len(scores)):.2f}) "
            f"against the optimum {optima.mean():.2f} at frame repeat {cfg.frame_repeat}: "
            f"{100 * share:.1f} %; optimal on {int((gaps < 1e-6).sum())} of {len(seeds)} seeds, "
            f"median gap {np.median(gaps):.0f}, worst {gaps.max():.0f} "
            f"(epoch {out['epoch']}, {time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    if len(shares) > 1:
        print(
            f"  mean share over {len(shares)} agents: {100 * np.mean(shares):.1f} % "
            f"± {100 * np.std(shares, ddof=1):.1f} (std); target 98 %"
        )


if __name__ == "__main__":
    main()
