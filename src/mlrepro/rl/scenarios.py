"""Which of ViZDoom's shipped .cfg files are scenarios, found without importing vizdoom.

vizdoom ships game configurations next to its scenarios: `doom.cfg`, `freedoom1.cfg`, ... load a
commercial game's maps, `learning.cfg` and `multi.cfg` reuse another scenario's map for an example
program, `cig.cfg` and `multi_duel.cfg` are multiplayer maps with no rewards. A .cfg is a
*scenario* here when it plays a map of its own and that map or the .cfg rewards something:

- its `doom_scenario_path` names the .wad of the same name, shipped beside it, and
- the .cfg sets a reward (`living_reward`, `death_penalty`, ...) or the .wad's ACS scripts declare
  ViZDoom's reward variable (`global int 0:reward`), which is how a map hands out rewards.

This module imports neither vizdoom nor torch: a Config checks `--scenario` with it before anything
runs, and without vizdoom installed there is nothing to check against.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

# .cfg keys that give rewards (ViZDoom's ConfigLoader); any one of them makes a reward setup.
REWARD_KEYS = (
    "living_reward",
    "death_penalty",
    "kill_reward",
    "map_exit_reward",
    "hit_reward",
    "hit_taken_penalty",
    "damage_made_reward",
    "damage_taken_penalty",
    "health_reward",
    "armor_reward",
    "item_reward",
    "secret_reward",
    "frag_reward",
)
_ACS_REWARD = re.compile(rb"global\s+int\s+0\s*:\s*reward", re.IGNORECASE)


def scenarios_path() -> Path | None:
    """vizdoom's `scenarios/` folder, or None when vizdoom is not installed."""
    spec = importlib.util.find_spec("vizdoom")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "scenarios"


def cfg_value(text: str, key: str) -> str | None:
    """The value of `key = value` in a ViZDoom .cfg's text (comments start with #), or None."""
    m = re.search(rf"^\s*{key}\s*=\s*([^#\n]*)", text, re.MULTILINE | re.IGNORECASE)
    return m.group(1).strip() if m else None


def is_scenario(cfg: Path) -> bool:
    """Whether `cfg` plays its own .wad, shipped beside it, with rewards (module docstring)."""
    text = cfg.read_text(errors="replace")
    wad = cfg_value(text, "doom_scenario_path")
    if wad is None or Path(wad).name != f"{cfg.stem}.wad" or not (cfg.parent / wad).is_file():
        return False
    if any(cfg_value(text, key) is not None for key in REWARD_KEYS):
        return True
    return _ACS_REWARD.search((cfg.parent / wad).read_bytes()) is not None


@functools.cache
def _names(folder: Path) -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in folder.glob("*.cfg") if is_scenario(p)))


def scenario_names() -> tuple[str, ...]:
    """The shipped scenarios, sorted: basic, deadly_corridor, defend_the_center, ..."""
    folder = scenarios_path()
    return _names(folder) if folder is not None and folder.is_dir() else ()


def resolve_scenario(scenario: str) -> Path:
    """`basic` → the shipped basic.cfg; a path to a .cfg is returned as is. ValueError, naming the
    shipped scenarios, when neither exists (or the name is a shipped .cfg that is no scenario)."""
    path = Path(scenario).expanduser()
    if path.suffix == ".cfg":
        if not path.is_file():
            raise ValueError(f"ViZDoom scenario file {scenario} does not exist")
        return path.resolve()
    names = scenario_names()
    folder = scenarios_path()
    if scenario not in names or folder is None:
        raise ValueError(
            f"unknown ViZDoom scenario {scenario!r}; scenarios: {', '.join(names)} "
            "(or a path to a .cfg)"
        )
    return (folder / f"{scenario}.cfg").resolve()


def scenario_tag(scenario: str) -> str:
    """The short name of a scenario for folder names: `basic`, or a .cfg path's file stem."""
    return Path(scenario).stem if scenario.endswith(".cfg") else scenario
