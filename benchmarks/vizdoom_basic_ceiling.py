"""The best score any policy can get on ViZDoom "basic" at a given frame repeat (exhaustive search).

ViZDoom is deterministic given the seed and the actions, so for each seed we replay every action
sequence up to `--max-steps` steps from the start and keep the best total reward of an episode that
ends with a kill. Actions: left, right, attack, left+attack, right+attack (the other three of the
blog's eight combinations are a no-op or duplicates). The mean over seeds bounds the mean test
score of every policy, learned or not, at that frame repeat.

Run:   python benchmarks/vizdoom_basic_ceiling.py                  (frame repeat 12, 100 seeds, ≈ 2 min)
       python benchmarks/vizdoom_basic_ceiling.py --frame-repeat 4 --max-steps 14 --policies move-then-shoot
"""

from __future__ import annotations

import argparse
import collections
import itertools
import tempfile
import time

import numpy as np

ACTIONS = {"L": [1, 0, 0], "R": [0, 1, 0], "A": [0, 0, 1], "LA": [1, 0, 1], "RA": [0, 1, 1]}


def best_score(game, seed: int, frame_repeat: int, max_steps: int) -> tuple[float, tuple]:
    best, best_seq = -np.inf, ()
    for n in range(1, max_steps + 1):
        if best_seq and n > len(best_seq) + 1:
            break  # two more steps cost ≥ 2 × frame_repeat tics: more than one miss (5) saves
        for seq in itertools.product(ACTIONS, repeat=n):
            if "A" not in seq[-1]:
                continue  # an episode ends with the shot that kills
            game.set_seed(seed)
            game.new_episode()
            for a in seq:
                game.make_action(ACTIONS[a], frame_repeat)
                if game.is_episode_finished():
                    break
            killed = game.is_episode_finished() and not game.is_episode_timeout_reached()
            if killed and game.get_total_reward() > best:
                best, best_seq = game.get_total_reward(), seq
    return best, best_seq


def best_move_then_shoot(game, seed: int, frame_repeat: int, max_steps: int) -> tuple[float, tuple]:
    """Best of the policies "move k steps one way, then shoot until the kill" (k < max_steps):
    a lower bound on the best score, cheap enough for small frame repeats."""
    best, best_seq = -np.inf, ()
    for move in ("L", "R"):
        for k in range(max_steps):
            for shot in ("A", move + "A"):
                game.set_seed(seed)
                game.new_episode()
                for _ in range(k):
                    game.make_action(ACTIONS[move], frame_repeat)
                shots = 0
                while not game.is_episode_finished():
                    game.make_action(ACTIONS[shot], frame_repeat)
                    shots += 1
                killed = not game.is_episode_timeout_reached()
                if killed and game.get_total_reward() > best:
                    best, best_seq = game.get_total_reward(), (move,) * k + (shot,) * shots
    return best, best_seq


def main(argv=None) -> None:
    import vizdoom as vzd

    from mlrepro.rl.env import _working_dir, scenario_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame-repeat", type=int, default=12)
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=2000)
    parser.add_argument("--policies", choices=["sequences", "move-then-shoot"], default="sequences",
                        help="every action sequence (exact), or move k steps then shoot (a bound)")
    args = parser.parse_args(argv)

    work = tempfile.mkdtemp(prefix="vizdoom-ceiling-")
    game = vzd.DoomGame()
    game.load_config(str(scenario_config("basic")))
    game.set_doom_config_path(f"{work}/_vizdoom.ini")
    game.set_window_visible(False)
    game.set_screen_format(vzd.ScreenFormat.GRAY8)
    game.set_screen_resolution(vzd.ScreenResolution.RES_160X120)
    with _working_dir(work):
        game.init()
    start = time.perf_counter()
    scores, lengths = [], collections.Counter()
    for s in range(args.first_seed, args.first_seed + args.seeds):
        search = best_score if args.policies == "sequences" else best_move_then_shoot
        score, seq = search(game, s, args.frame_repeat, args.max_steps)
        scores.append(score)
        lengths[len(seq)] += 1
    game.close()
    scores = np.array(scores)
    what = (f"best sequence of ≤ {args.max_steps} steps" if args.policies == "sequences" else
            f"best 'move k < {args.max_steps} steps, then shoot' policy")
    print(f"ViZDoom basic, frame repeat {args.frame_repeat}, {what} for seeds {args.first_seed}.."
          f"{args.first_seed + args.seeds - 1}:")
    print(f"  mean of the best scores {scores.mean():.2f} (std {scores.std():.2f}, standard error "
          f"{scores.std() / np.sqrt(len(scores)):.2f}), {time.perf_counter() - start:.0f} s")
    print("  steps to the kill: " + ", ".join(f"{k}: {v}" for k, v in sorted(lengths.items())))
    values, counts = np.unique(scores, return_counts=True)
    print("  scores: " + ", ".join(f"{v:.0f} ×{c}" for v, c in zip(values, counts)))


if __name__ == "__main__":
    main()
