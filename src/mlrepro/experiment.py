"""The experiment contract: what every reproduced result declares, and what its `run` receives.

Each module in `mlrepro.experiments` ends with one `EXPERIMENT = Experiment(...)`: its Config type,
presets (each with a one-line purpose and the time it takes), claim, headline metrics and, for a
classifier, a data spec that `attack`, `export`, `lr-find` and the demo read instead of probing
the module. `run(cfg, ctx)` gets a `RunContext`: the run folder, seed, device, the data loader that
records provenance, and `fit`, the one training lifecycle (history, checkpoint, exact resume).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from .config import ExperimentConfig, build_config
from .engine import Callback, Checkpoint, History, Learner, ProgressBar, RunDir, RunLogger
from .engine.runtime import get_rng_state, set_rng_state
from .errors import ConfigError, DataError

if TYPE_CHECKING:
    from .tracking import Tracker


@dataclass(frozen=True)
class Preset(Mapping):
    """Named Config overrides, with what they are for and how long they take (a mapping of values,
    so `Config(**preset)` works)."""

    overrides: Mapping[str, Any]  # Config field -> value
    about: str  # one line: what this preset is for
    time: str = ""  # how long it takes, e.g. "≈ 4 min on a 2-core CPU"

    def __getitem__(self, key: str) -> Any:
        return self.overrides[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.overrides)

    def __len__(self) -> int:
        return len(self.overrides)


@dataclass(frozen=True)
class DataSpec:
    """What a classifier's model takes, so run-folder commands need not know the experiment."""

    dataset: str  # the `load_dataset` name whose test split `attack` and `export` read
    shape: tuple[int, ...]  # one input as the model takes it, e.g. (1, 28, 28) or (28, 28, 1)
    classes: int
    mean: tuple[float, ...] | None = None  # normalisation the model expects, on [0, 1] pixels
    std: tuple[float, ...] | None = None
    channels_last: bool = False  # inputs are (H, W, C) (the Keras-style models)
    canvas: int | None = None  # digits centred on a canvas this many px wide (MultiMNIST's 36)
    scores: Literal["logits", "lengths", "probabilities"] = "logits"  # what the outputs are


@dataclass
class Setup:
    """A ready Learner and its data, shared by an experiment's `run` and by `mlrepro lr-find`."""

    learner: Learner
    train: Iterable
    val: Iterable | None = None
    test: Iterable | None = None
    info: dict = field(default_factory=dict)  # experiment-specific facts (total steps, precision…)


@dataclass(frozen=True)
class Experiment:
    """One reproduced result, registered by name (`mlrepro.experiments.get_experiment`)."""

    name: str
    config: type  # a frozen dataclass deriving from ExperimentConfig
    run: Callable[[Any, RunContext], dict]
    claim: str  # the number being reproduced, with its source
    headline: tuple[str, ...]  # the metrics a results row shows, most important first
    presets: Mapping[str, Preset]
    summary: str = ""  # one line for `mlrepro list` (the module docstring's first line)
    data: Callable[[Any], DataSpec] | None = None  # classifiers: their input, for attack/export
    build_model: Callable[[Any], nn.Module] | None = None  # the network a run's checkpoint fills
    setup: Callable[[Any, RunContext], Setup] | None = None  # for lr-find: learner + train data
    play: Callable[..., dict] | None = None  # agents: replay a run's policy (`mlrepro play`)
    requires: tuple[str, ...] = ()  # importable modules an optional extra provides
    extra: str = ""  # the pip extra that provides them, e.g. "rl"
    search_metric: tuple[str, Literal["minimize", "maximize"]] | None = None  # default: headline[0]
    reproduce: str = ""  # the command behind the claim (default: `mlrepro run NAME --seeds 0,1,2`)
    # A config's short tag in its run and sweep folder names (a DQN run's scenario), so runs that
    # differ in it are told apart at a glance: runs/NAME/TAG-<time>-s<seed>, runs/NAME/sweep-TAG-...
    folder_tag: Callable[[Any], str] | None = None

    def __post_init__(self) -> None:
        # Presets are validated when the module loads, so a bad key can never reach a user.
        if not (
            dataclasses.is_dataclass(self.config) and issubclass(self.config, ExperimentConfig)
        ):
            raise TypeError(f"experiment {self.name}: config must be an ExperimentConfig dataclass")
        if not self.headline:
            raise TypeError(f"experiment {self.name}: needs at least one headline metric")
        if "quick" not in self.presets:
            raise TypeError(f"experiment {self.name}: needs a 'quick' preset (the demo runs it)")
        for name, preset in self.presets.items():
            if not isinstance(preset, Preset) or not preset.about:
                raise TypeError(
                    f"experiment {self.name}: preset {name!r} needs a Preset with `about`"
                )
            build_config(self.config, self.presets, name, what=self.name)
        if (self.data is None) != (self.build_model is None):
            raise TypeError(
                f"experiment {self.name}: a classifier declares both data and build_model"
            )

    @property
    def command(self) -> str:
        """The command that reproduces the claim."""
        return self.reproduce or f"mlrepro run {self.name} --seeds 0,1,2"

    def make_config(
        self, preset: str | None = None, overrides: Mapping[str, Any] | None = None
    ) -> Any:
        """The Config of `preset` with `overrides` (CLI strings or JSON values); ConfigError if
        bad."""
        return build_config(
            self.config, self.presets, preset, dict(overrides or {}), what=self.name
        )

    def recorded_config(self, config: Mapping[str, Any]) -> Any:
        """The Config a run's config.json records: fields added to the Config since the run at
        what the run did without them (today's default, or `former_defaults` where that changed)."""
        former = getattr(self.config, "former_defaults", {})
        absent = {k: v for k, v in former.items() if k not in config}
        return self.make_config(None, {**absent, **config})

    def objective(self) -> tuple[str, str]:
        """(metric, direction) a search optimises: search_metric, else the first headline metric."""
        if self.search_metric is not None:
            return self.search_metric
        key = self.headline[0]
        lower = any(w in key for w in ("loss", "error", "inertia"))
        return key, "minimize" if lower else "maximize"

    def missing_requirements(self) -> list[str]:
        """The modules of `requires` that cannot be imported here."""
        import importlib.util

        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def check_requirements(self) -> None:
        """ConfigError naming the pip extra when a required module is missing."""
        missing = self.missing_requirements()
        if missing:
            raise ConfigError(
                f"{self.name} needs {', '.join(missing)}: pip install "
                f"'mlrepro[{self.extra or 'all'}]'"
            )


@dataclass
class RunContext:
    """What an experiment's `run(cfg, ctx)` gets besides its config."""

    run_dir: RunDir
    seed: int
    device: torch.device
    data_dir: str | None = None  # the folder the user named (flag or MLREPRO_DATA); None = none
    resume: bool = False
    verbose: bool = True
    config: dict = field(default_factory=dict)  # the run's config.json record
    notes: list[str] = field(default_factory=list)
    rank: int = 0  # under torchrun: this process's rank among world_size (data shard, who writes)
    world_size: int = 1
    resume_from: RunDir | None = None  # where the checkpoints are (default run_dir)
    tracker: Tracker | None = None  # TensorBoard / MLflow (--track): fed by `fit` and `epochs`
    full_data_only: bool = False  # refuse the bundled samples (runs that become results rows)
    keep_checkpoints: bool = False  # also keep every epoch's checkpoint (--keep-checkpoints all)

    @property
    def is_main(self) -> bool:
        """Only the main process writes the run folder, checkpoints and results."""
        return self.rank == 0

    @property
    def tracking(self) -> bool:
        """Whether this process feeds a tracker (the main process, when one is set)."""
        return self.tracker is not None and self.is_main

    def log(self, msg: str) -> None:
        if self.verbose:
            print(msg, file=sys.stderr, flush=True)

    def note(self, msg: str) -> None:
        """A remark that belongs in metrics.json (e.g. 'used the bundled MNIST sample')."""
        if msg not in self.notes:  # printed once at the end of the run (see cli.py)
            self.notes.append(msg)

    # --- data, with provenance ---
    def load(self, dataset: str, *splits: str) -> list:
        """The given splits of a dataset, each recorded in config.json under "data" (folder, format,
        files, checksums, sample or not). A resumed run must read exactly what it read before."""
        from .data import load_dataset

        recorded = self.config.setdefault("data", {})
        out = []
        for split in splits:
            key = f"{dataset}/{split}"
            strict = {"allow_sample": False} if self.full_data_only else {}
            ds = load_dataset(dataset, split, self.data_dir, **strict)
            prov = provenance_of(ds)
            if self.config.get("data_dir_from") and not ds.is_sample:
                prov["data_dir_from"] = self.config["data_dir_from"]  # where the user named it
            before = recorded.get(key)
            if before is not None and content_of(before) != content_of(prov):
                raise DataError(
                    f"{key}: the data differ from what this run read before "
                    f"({_first_difference(content_of(before), content_of(prov))}); a "
                    "resumed run must read the same data"
                )
            if ds.is_sample:
                self.note(
                    f"used the bundled {len(ds)}-image {ds.name} {ds.split} sample; "
                    "point --data-dir or MLREPRO_DATA at the full data"
                )
            if before is None:
                recorded[key] = prov
                if self.is_main:
                    self.run_dir.write_config(self.config)
            out.append(ds)
        return out

    # --- the training lifecycle ---
    def lifecycle(
        self, learner: Learner, stage: str | None = None, checkpoint_every: int = 1
    ) -> list[Callback]:
        """Restore `learner` from this stage's last checkpoint on `--resume`, and return the
        callbacks that keep the run folder's history, checkpoint and progress for its `fit`.
        A run that trains several networks names each `stage` (its history rows are tagged with
        it, its checkpoint is its own)."""
        if self.resume:
            source = self.resume_from or self.run_dir
            state = source.load_checkpoint(map_location=learner.device, stage=stage)
            if state is not None:
                learner.load_state_dict(state)
                self.log(
                    f"resumed {stage or 'training'} from {source.checkpoint_file(stage)} "
                    f"after epoch {learner.epoch}"
                )
        # The tracker logs an epoch before it is checkpointed; a resumed run supersedes the rest.
        tracker = self.tracker if self.tracking else None
        cbs: list[Callback] = [tracker.callback(stage)] if tracker is not None else []
        if self.is_main:
            cbs += [
                RunLogger(self.run_dir, stage=stage),
                Checkpoint(
                    self.run_dir,
                    self.config,
                    every=checkpoint_every,
                    stage=stage,
                    keep_all=self.keep_checkpoints,
                ),
            ]
        if self.verbose:
            cbs.append(ProgressBar())
        return cbs

    def fit(
        self,
        learner: Learner,
        train_data,
        epochs: int,
        *,
        val_data=None,
        callbacks=(),
        stage: str | None = None,
        checkpoint_every: int = 1,
        max_steps: int | None = None,
    ) -> History:
        """`learner.fit` through the run's lifecycle (`lifecycle`): continues from the stage's
        last checkpoint on `--resume`."""
        cbs = self.lifecycle(learner, stage, checkpoint_every)
        return learner.fit(
            train_data,
            epochs,
            val_data=val_data,
            callbacks=[*cbs, *callbacks],
            max_steps=max_steps,
        )

    def epochs(
        self,
        epochs: int,
        step: Callable[[int], dict],
        *,
        state: Callable[[], dict],
        load_state: Callable[[dict], None],
        stage: str | None = None,
    ) -> list[dict]:
        """The same lifecycle for a loop of its own (the DQN agent): `step(epoch)` trains epoch
        `epoch` (0-based) and returns its history row; after each, the row is appended and
        `{**state(), "epoch", "rng", "config"}` saved, atomically. Resumes after the last saved
        epoch; returns the stage's history rows."""
        start = 0
        if self.resume:
            saved = (self.resume_from or self.run_dir).load_checkpoint(stage=stage)
            if saved is not None:
                load_state(saved)
                set_rng_state(saved["rng"])
                start = int(saved["epoch"])
                self.log(f"resumed {stage or 'training'} after epoch {start}")
        keep = (
            [r for r in self.run_dir.history() if r.get("stage") != stage or r["epoch"] <= start]
            if self.is_main
            else []
        )
        if self.is_main:
            self.run_dir.write_history(keep)
        tracker = self.tracker if self.tracking else None
        if tracker is not None:
            tracker.begin_stage(stage, start)
        for epoch in range(start, epochs):
            row = {"epoch": epoch + 1, **step(epoch)}
            if stage is not None:
                row["stage"] = stage
            if tracker is not None:
                tracker.log_epoch(stage, epoch + 1, row)
            if self.is_main:
                self.run_dir.append_history(row)
                self.run_dir.save_checkpoint(
                    {**state(), "epoch": epoch + 1, "rng": get_rng_state(), "config": self.config},
                    stage=stage,
                    keep_all=self.keep_checkpoints,
                )
        return [r for r in self.run_dir.history() if r.get("stage") == stage]


def provenance_of(ds) -> dict:
    """A dataset's provenance as plain JSON (what was read, from where, with which checksums)."""
    prov = getattr(ds, "provenance", None)
    if prov is None:
        return {
            "dataset": ds.name,
            "split": ds.split,
            "source": ds.source,
            "sample": ds.is_sample,
            "n": len(ds),
        }
    return dict(prov.to_dict() if hasattr(prov, "to_dict") else prov)


def content_of(prov: Any) -> Any:
    """Provenance without where the files lie: moving a data folder does not change the data."""
    if isinstance(prov, dict):
        return {
            k: content_of(v)
            for k, v in prov.items()
            if k not in ("path", "data_dir", "data_dir_from", "source")
        }
    if isinstance(prov, list):
        return [content_of(v) for v in prov]
    return prov


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    """Where two JSON values first differ, e.g. "files[0].sha256: 'ab…' vs 'cd…'"."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path or 'value'}: {a!r} before, {b!r} now"
