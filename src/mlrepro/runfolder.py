"""Commands on a finished run's folder: rebuild its trained model and test data, attack it.

The run's config.json names the experiment and its Config; the experiment's `build_model(cfg)`
makes the network, the checkpoint's "model" state fills it, and its `data` spec says what the
network takes. The rebuilt model takes pixels in [0, 1] and applies the run's normalisation
itself, so `export`, `attack` and deployment need no preprocessing code.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .engine import RunDir
from .errors import ConfigError
from .experiment import DataSpec, Experiment
from .experiments import get_experiment
from .io import atomic_write_json
from .nn import Normalize
from .runner import device_option, open_run_dir


def load_run(
    run_dir: str | os.PathLike, option: str = "run folder"
) -> tuple[RunDir, dict, Experiment, object]:
    """(the run folder, its config.json record, its Experiment, its Config)."""
    rd = open_run_dir(run_dir, option)
    record = rd.read_config()
    exp = get_experiment(record.get("experiment", "?"))
    return rd, record, exp, exp.recorded_config(record["config"])


def load_run_model(
    run_dir: str | os.PathLike, option: str = "run folder"
) -> tuple[nn.Module, DataSpec, dict]:
    """(model in eval mode taking [0, 1] pixels, its data spec, the run's config record)."""
    rd, record, exp, cfg = load_run(run_dir, option)
    if exp.build_model is None or exp.data is None:
        raise ConfigError(
            f"{option}: {run_dir} is a run of {exp.name}, which has no network to "
            "export or attack (it is not a classifier)"
        )
    state = rd.load_checkpoint()
    if state is None:
        raise ConfigError(
            f"{option}: {run_dir} has no checkpoint.pt (the run did not finish an epoch)"
        )
    model = exp.build_model(cfg)
    model.load_state_dict(state["model"])
    spec = exp.data(cfg)
    if spec.mean is not None:
        model = nn.Sequential(
            Normalize(spec.mean, spec.std, channels_last=spec.channels_last), model
        )
    return model.eval(), spec, record


def test_inputs(
    spec: DataSpec, data_dir: str | None, limit: int = 0
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...], dict]:
    """(x in [0, 1] shaped as the model takes it, labels, class names, provenance) of the first
    `limit` (0 = all) test images of the spec's dataset."""
    from .data import load_dataset
    from .experiment import provenance_of

    test = load_dataset(spec.dataset, "test", data_dir)
    n = min(limit or len(test), len(test))
    x = test.images[:n].float().div_(255)  # (N, C, H, W)
    if spec.canvas is not None:  # centred on the canvas (MultiMNIST's 36 × 36)
        pad = spec.canvas - x.shape[-1]
        x = F.pad(x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
    if spec.channels_last:
        x = x.permute(0, 2, 3, 1)
    x = x.contiguous()
    if tuple(x.shape[1:]) != tuple(spec.shape):
        raise ConfigError(
            f"the {spec.dataset} test images are {tuple(x.shape[1:])}, but the model "
            f"takes {spec.shape}"
        )
    return x, test.labels[:n], test.classes, provenance_of(test)


class LogOf(nn.Module):
    """log of a model's probabilities: the logits (up to a constant) attacks need from a softmax
    model such as the Keras post's."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).clamp_min(1e-30).log()


class FromChannelsFirst(nn.Module):
    """(N, C, H, W) → the (N, H, W, C) a channels-last model takes: attacks and their figures keep
    images channels-first."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.permute(0, 2, 3, 1))


def attack_run(
    run_dir: str | os.PathLike,
    attack: str = "fgsm",
    eps: float = 0.1,
    *,
    steps: int | None = None,
    alpha: float | None = None,
    random_start: bool = True,
    target: int | None = None,
    limit: int = 0,
    batch_size: int = 1000,
    data_dir: str | None = None,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = False,
) -> tuple[dict, Path, Path]:
    """Attack the run's model on its dataset's test split; returns (metrics, json path, grid
    path)."""
    from .attacks import check_eps, evaluate_attack, make_attack, plot_examples

    check_eps(eps)
    attack_fn = make_attack(
        attack,
        eps,
        steps=steps,
        alpha=alpha,
        random_start=random_start,
        targeted=target is not None,
    )
    if limit < 0 or batch_size < 1:
        raise ConfigError(
            f"--limit must be >= 0 and --batch-size >= 1, got {limit} and {batch_size}"
        )
    dev = device_option(device)
    model, spec, record = load_run_model(run_dir, "attack")
    scores = spec.scores
    if scores == "probabilities":
        model, scores = LogOf(model).eval(), "logits"
    if target is not None and not 0 <= target < spec.classes:
        raise ConfigError(
            f"--target must be a class index in [0, {spec.classes - 1}], got {target}"
        )
    x, y, classes, prov = test_inputs(spec, data_dir or record.get("data_dir"), limit)
    if spec.channels_last:
        model, x = FromChannelsFirst(model).eval(), x.permute(0, 3, 1, 2).contiguous()
    model.to(dev)
    x, y = x.to(dev), y.to(dev)
    torch.manual_seed(seed)  # PGD's random start
    stats, x_adv = evaluate_attack(
        model,
        x,
        y,
        attack_fn,
        batch_size=batch_size,
        target=None if target is None else torch.full_like(y, target),
        progress=progress,
    )
    tag = f"{attack}-eps{eps:g}" + ("" if target is None else f"-target{target}")
    json_path = Path(run_dir) / "attacks" / f"{tag}.json"
    png_path = Path(run_dir) / "plots" / f"attack-{tag}.png"
    metrics = {
        "attack": attack,
        "eps": eps,
        "steps": steps,
        "alpha": alpha,
        "target": target,
        "random_start": random_start if attack.startswith("pgd") else None,
        **stats,
        "dataset": spec.dataset,
        "seed": seed,
        "data": prov,
    }
    atomic_write_json(json_path, metrics)
    plot_examples(
        model,
        x[:200],
        x_adv[:200],
        png_path,
        y=y[:200],
        classes=classes,
        scores=scores,
        title=f"{record['experiment']}: {attack}, ε = {eps:g}"
        + ("" if target is None else f", target {target}"),
    )
    return metrics, json_path, png_path
