"""ViZDoom scenarios as gymnasium environments: headless, GRAY8, repeated actions, small frames.

The blog (after ViZDoom's `learning_pytorch.py` of 2018) renders 640×480, repeats every action for
12 tics and shrinks the screen to 30×45 grey pixels. We render at 160×120 instead: the network only
ever sees 30×45, and the engine draws the smaller screen several times faster.

This module imports neither torch nor anything from mlrepro but `rl.scenarios` (which imports
nothing), so vector-environment workers start fast.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
import vizdoom as vzd
from gymnasium import spaces
from PIL import Image

from .scenarios import resolve_scenario

SCENARIOS_PATH = Path(vzd.scenarios_path)


def scenario_config(scenario: str) -> Path:
    """`basic` → the .cfg shipped with vizdoom; a path to a .cfg is returned as is (checked).
    ValueError naming the shipped scenarios (`scenarios.scenario_names`) otherwise."""
    return resolve_scenario(scenario)


# Buttons that undo each other: pressing both is the same as pressing neither (ViZDoom sums them).
OPPOSITES = (
    ("MOVE_LEFT", "MOVE_RIGHT"),
    ("TURN_LEFT", "TURN_RIGHT"),
    ("MOVE_FORWARD", "MOVE_BACKWARD"),
    ("LOOK_UP", "LOOK_DOWN"),
    ("MOVE_UP", "MOVE_DOWN"),
    ("SELECT_NEXT_WEAPON", "SELECT_PREV_WEAPON"),
)


def action_table(
    buttons: int | Sequence[str], kind: str = "all", max_pressed: int = 0
) -> np.ndarray:
    """Button vectors for each discrete action, (n_actions, n_buttons) int.

    "all": every on/off combination (the blog's `it.product([0, 1], repeat=n)`, 8 for basic),
    contradictory ones included (left + right);
    "single": one button at a time (3 for basic);
    "combos": every combination without a contradictory pair (`OPPOSITES`), the no-op included
    (6 for basic and defend_the_center, 18 for my_way_home, 54 for deadly_corridor); analog
    `*_DELTA` buttons are never pressed. `max_pressed` > 0 keeps combinations of at most that many
    buttons. Needs the button names.
    """
    names = [f"BUTTON{i}" for i in range(buttons)] if isinstance(buttons, int) else list(buttons)
    n = len(names)
    if kind == "all":
        return np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.int64)
    if kind == "single":
        return np.eye(n, dtype=np.int64)
    if kind != "combos":
        raise ValueError(f"actions must be 'all', 'single' or 'combos', got {kind!r}")
    index = {b: i for i, b in enumerate(names)}
    pairs = [(index[a], index[b]) for a, b in OPPOSITES if a in index and b in index]
    analog = [i for i, b in enumerate(names) if b.endswith("_DELTA")]
    rows = [
        row
        for row in itertools.product([0, 1], repeat=n)
        if not any(row[i] and row[j] for i, j in pairs)
        and not any(row[i] for i in analog)
        and (max_pressed <= 0 or sum(row) <= max_pressed)
    ]
    return np.array(rows, dtype=np.int64).reshape(len(rows), n)


AMMO = "AMMO"  # in `costs`: the rounds of the weapon in hand (see `_drop`)


def _read_variable(game, name: str) -> tuple[float, float]:
    if name == AMMO:
        # AMMO0–AMMO9 count per weapon slot, and slots that share a kind of ammunition (pistol
        # and chaingun) show the same rounds twice: their sum would charge a shot twice. The
        # weapon in hand's count is right, as long as the weapon is the same before and after.
        return (
            game.get_game_variable(vzd.GameVariable.SELECTED_WEAPON),
            game.get_game_variable(vzd.GameVariable.SELECTED_WEAPON_AMMO),
        )
    return 0.0, game.get_game_variable(getattr(vzd.GameVariable, name))


def _drop(before: tuple[float, float], after: tuple[float, float]) -> float:
    """How much a variable fell during a step (0 if it rose, or if the weapon in hand changed)."""
    return max(0.0, before[1] - after[1]) if before[0] == after[0] else 0.0


def resize_gray(frame: np.ndarray, resolution: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 → (h, w) uint8 with PIL's antialiased bilinear filter."""
    h, w = resolution
    return np.asarray(Image.fromarray(frame).resize((w, h), Image.BILINEAR))


@contextlib.contextmanager
def _working_dir(path: Path):
    # The engine is a child process that creates `./_vizdoom/` in its working directory; there is no
    # option for it, so the child is started from `path`. Only `game.init()` runs in here.
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


class DoomEnv(gym.Env):
    """A ViZDoom scenario with the gymnasium API.

    Observations are uint8 arrays (frame_stack, h, w); actions index `action_table(...)`. One step
    repeats the action for `frame_repeat` tics and returns the summed reward. An episode ends with
    `terminated` when the scenario's goal or death ends it and `truncated` at the scenario's
    timeout; the final `info` holds `{"episode": {"r": return, "l": length in steps}}`.

    With `costs` ({game variable: weight}), the reward of a step also loses weight × the drop of
    that variable during the step: {"AMMO": 0.1} costs 0.1 per round fired, {"HEALTH": 0.01} 0.01
    per health point lost (rises, a medikit or an ammunition pick-up, earn nothing). The variable
    is read from the engine whether or not the scenario lists it. Costs shape only what the learner
    sees: the episode's score in `info["episode"]["r"]` stays the scenario's own total reward, so
    shaped and unshaped agents are compared in the scenario's units. The step that ends an episode
    is not charged (the engine has no state after the last tic).

    With `seed_episodes`, `reset(seed=s)` starts a run of episodes seeded s, s + 1, s + 2, ... (the
    later ones by the vector env's auto-reset), so two policies tested from the same seed meet the
    same scenario draws (monster places, ...) episode by episode. Without it, only the first
    episode is seeded and the rest follow the engine's random stream, which the policy's play
    advances.

    Args:
        work_dir: where the engine writes `_vizdoom.ini` and `_vizdoom/` (default: a temporary
            folder removed by `close()`); never the current directory.
        render_mode: "rgb_array" makes `render()` return the last full-size screen (H, W, 3) and
            keeps the screen of every tic of the last step in `tic_screens` (H, W) for replays.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 35}  # noqa: RUF012 (gymnasium API)

    def __init__(
        self,
        scenario: str = "basic",
        *,
        frame_repeat: int = 12,
        resolution: tuple[int, int] = (30, 45),
        frame_stack: int = 1,
        actions: str = "all",
        max_buttons: int = 0,
        seed_episodes: bool = False,
        costs: dict[str, float] | None = None,
        screen_resolution: str = "RES_160X120",
        work_dir: str | os.PathLike | None = None,
        render_mode: str | None = None,
    ):
        if frame_repeat < 1 or frame_stack < 1:
            raise ValueError("frame_repeat and frame_stack must be >= 1")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.costs = {k: float(w) for k, w in (costs or {}).items() if w}
        for name, weight in self.costs.items():
            if name != AMMO and not hasattr(vzd.GameVariable, name):
                raise ValueError(
                    f"costs: unknown game variable {name!r} (e.g. AMMO, HEALTH, ARMOR)"
                )
            if weight < 0:
                raise ValueError(f"costs: {name} has a negative weight {weight} (must be >= 0)")
        self.frame_repeat, self.frame_stack = frame_repeat, frame_stack
        self.resolution = tuple(resolution)
        self.render_mode = render_mode
        self._own_dir = work_dir is None
        self.work_dir = Path(tempfile.mkdtemp(prefix="vizdoom-") if work_dir is None else work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)

        game = vzd.DoomGame()
        game.load_config(str(scenario_config(scenario)))
        game.set_doom_config_path(str(self.work_dir.resolve() / "_vizdoom.ini"))
        game.set_window_visible(False)
        game.set_sound_enabled(False)
        game.set_mode(vzd.Mode.PLAYER)
        game.set_screen_format(vzd.ScreenFormat.GRAY8)
        game.set_screen_resolution(getattr(vzd.ScreenResolution, screen_resolution))
        with _working_dir(self.work_dir):
            game.init()
        self.game = game
        self.buttons = [b.name for b in game.get_available_buttons()]
        self.actions = action_table(self.buttons, actions, max_buttons)
        self._action_lists = [list(map(int, a)) for a in self.actions]  # make_action wants lists
        self.action_space = spaces.Discrete(len(self.actions))
        self.observation_space = spaces.Box(0, 255, (frame_stack, *self.resolution), np.uint8)
        self._frames = np.zeros((frame_stack, *self.resolution), np.uint8)
        self._screen: np.ndarray | None = None
        self.tic_screens: list[np.ndarray] = []  # with render_mode="rgb_array": every tic of a step
        self._steps = 0
        self.seed_episodes = seed_episodes
        self._episode_seed: int | None = None
        self._variables: dict[str, tuple[float, float]] = {}

    def _observe(self) -> None:
        # After the last step of an episode ViZDoom has no state (get_state() is None): the stack
        # then keeps the last frame seen.
        state = self.game.get_state()
        if state is None:
            return
        self._screen = state.screen_buffer  # (H, W) uint8
        self._frames = np.roll(self._frames, -1, axis=0)
        self._frames[-1] = resize_gray(self._screen, self.resolution)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._episode_seed = int(seed)
        elif self.seed_episodes and self._episode_seed is not None:
            self._episode_seed += 1
        if seed is not None or (self.seed_episodes and self._episode_seed is not None):
            self.game.set_seed(self._episode_seed % 2**31)  # the engine's RNG (monster places ...)
        self.game.new_episode()
        self._steps = 0
        self._frames[:] = 0
        self._observe()
        self._frames[:] = self._frames[-1]  # a fresh stack repeats the first frame
        self._variables = {name: _read_variable(self.game, name) for name in self.costs}
        return self._frames.copy(), {}

    def step(self, action):
        if self.render_mode == "rgb_array":
            reward = self._step_recording(self._action_lists[int(action)])
        else:
            reward = self.game.make_action(self._action_lists[int(action)], self.frame_repeat)
        self._steps += 1
        done = self.game.is_episode_finished()
        truncated = done and self.game.is_episode_timeout_reached()
        terminated = done and not truncated
        info = {}
        if done:
            info["episode"] = {"r": float(self.game.get_total_reward()), "l": self._steps}
        else:
            self._observe()
            for name, weight in self.costs.items():
                now = _read_variable(self.game, name)
                reward -= weight * _drop(self._variables[name], now)
                self._variables[name] = now
        return self._frames.copy(), float(reward), terminated, truncated, info

    def _step_recording(self, buttons: list[int]) -> float:
        # The same tics as make_action(buttons, frame_repeat), one at a time, keeping every screen
        # for a smooth replay (the agent still sees only the last one).
        self.game.set_action(buttons)
        reward, self.tic_screens = 0.0, []
        for _ in range(self.frame_repeat):
            self.game.advance_action(1, True)
            reward += self.game.get_last_reward()
            if self.game.is_episode_finished():
                break
            self.tic_screens.append(self.game.get_state().screen_buffer)
        return reward

    def render(self):
        if self.render_mode != "rgb_array" or self._screen is None:
            return None
        return np.repeat(self._screen[:, :, None], 3, axis=2)  # (H, W, 3) grey as RGB

    def close(self):
        if getattr(self, "game", None) is not None:
            self.game.close()
            self.game = None
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        super().close()


ENV_ID = "mlrepro/Doom-v0"
if ENV_ID not in gym.registry:
    # `gymnasium.make("mlrepro/Doom-v0", scenario="defend_the_center")` works after importing us.
    gym.register(id=ENV_ID, entry_point=DoomEnv)


def make_vector_env(n_envs: int, *, asynchronous: bool | None = None, **env_kwargs):
    """`n_envs` DoomEnvs behind gymnasium's vector API, auto-resetting in the same step.

    With `asynchronous` (default: n_envs > 1) each environment runs in its own worker process, and
    `step_async`/`step_wait` let the caller learn while the engines play. The observation returned
    with a finished episode is the first of the next one (the last one is in `info["final_obs"]`).
    """
    from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    work_dir = env_kwargs.pop("work_dir", None)

    def make(i):
        kw = dict(env_kwargs)
        if work_dir is not None:
            kw["work_dir"] = Path(work_dir) / f"env{i}"
        return lambda: DoomEnv(**kw)

    fns = [make(i) for i in range(n_envs)]
    if asynchronous is None:
        asynchronous = n_envs > 1
    if asynchronous:
        return AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
