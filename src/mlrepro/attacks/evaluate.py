"""`mlrepro attack RUN_DIR`: attack a trained run's model on its test set and write the evidence."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..engine.rundir import atomic_write_json
from ..errors import ConfigError
from .attacks import check_eps
from .robustness import evaluate_attack, make_attack, plot_examples


def attack_run(run_dir: str | os.PathLike, attack: str = "fgsm", eps: float = 0.1, *,
               steps: int | None = None, alpha: float | None = None, random_start: bool = True,
               target: int | None = None, limit: int = 0, batch_size: int = 1000,
               data_dir: str | None = None, device: str = "cpu", seed: int = 0) -> tuple[dict, Path, Path]:
    """Attack the run's model on its dataset's test split; returns (metrics, json path, grid path).

    The model is rebuilt as `mlrepro export` does (config.json + checkpoint.pt), with the run's
    input normalisation as its first layer, so the attack works on pixels in [0, 1].
    """
    from ..data import load_dataset
    from ..engine.runtime import resolve_device
    from ..experiments import get_experiment
    from ..export import load_run_model

    check_eps(eps)
    attack_fn = make_attack(attack, eps, steps=steps, alpha=alpha, random_start=random_start,
                            targeted=target is not None)
    if limit < 0 or batch_size < 1:
        raise ConfigError(f"--limit must be >= 0 and --batch-size >= 1, got {limit} and {batch_size}")
    try:
        dev = resolve_device(device)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    model, shape, record = load_run_model(run_dir)
    model.to(dev)
    test = load_dataset(record["config"].get("dataset", "mnist"), "test", data_dir or record.get("data_dir"))
    n = min(limit or len(test), len(test))
    x = test.images[:n].to(dev).float().div_(255).reshape(-1, *shape)  # pixels in [0, 1]
    y = test.labels[:n].to(dev)
    if target is not None and not 0 <= target < len(test.classes):
        raise ConfigError(f"--target must be a class index in [0, {len(test.classes) - 1}], got {target}")
    torch.manual_seed(seed)  # PGD's random start
    stats, x_adv = evaluate_attack(model, x, y, attack_fn, batch_size=batch_size,
                                   target=None if target is None else torch.full_like(y, target))
    tag = f"{attack}-eps{eps:g}" + ("" if target is None else f"-target{target}")
    out = Path(run_dir) / "attacks"
    json_path, png_path = out / f"{tag}.json", Path(run_dir) / "plots" / f"attack-{tag}.png"
    metrics = {"attack": attack, "eps": eps, "steps": steps, "alpha": alpha, "target": target,
               "random_start": random_start if attack.startswith("pgd") else None, **stats,
               "dataset": test.name, "seed": seed}
    atomic_write_json(json_path, metrics)
    plot_examples(model, x[:200], x_adv[:200], png_path, classes=test.classes,
                  scores=getattr(get_experiment(record["experiment"]), "SCORES", "logits"),
                  title=f"{record['experiment']}: {attack}, ε = {eps:g}"
                        + ("" if target is None else f", target {target}"))
    return metrics, json_path, png_path
