"""Wide ResNet WRN-28-10 on CIFAR-10 (Zagoruyko & Komodakis, 2016), the blog's PyTorch port, fixed.

Claim: 95.84 % test accuracy (blog); paper: 96.11 % (WRN-28-10, dropout 0.3), 96.92 % with cutout
(DeVries & Taylor, 2017). Recipe: SGD 0.9 Nesterov, lr 0.1 × 0.2 at epochs 60/120/160, wd 5e-4,
batch 128, 200 epochs, crop + flip + cutout 16 px. GPU-scale: ≈ 5.2 G multiply-adds per image.
Run:   mlrepro run wrn-cifar10 --seeds 0,1,2        Quick: mlrepro run wrn-cifar10 --quick
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _cifar

CLAIM = "95.84 % (blog); 96.11 % (paper); 96.92 % with cutout (DeVries & Taylor)"
HEADLINE = ("test_accuracy", "train_time_s", "wall_time_s")


@dataclass(frozen=True)
class Config(_cifar.CifarConfig):
    model: str = "wrn_28_10"  # paper, blog
    dropout: float = 0.3  # paper (between the block's convolutions)
    epochs: int = 200  # paper
    batch_size: int = 128  # paper
    lr: float = 0.1  # paper (the blog's learn.fit starts at 0.01)
    weight_decay: float = 5e-4  # paper; applied to every parameter, as in the paper's code
    milestones: tuple[int, ...] = (60, 120, 160)  # paper
    gamma: float = 0.2  # paper
    cutout: int = 16  # DeVries & Taylor's CIFAR-10 hole size


PRESETS = {
    # Smoke test: WRN-10-2 (the recipe's code path, a network small enough for seconds on a CPU).
    "quick": {"model": "wrn_10_2", "dropout": 0.0, "epochs": 2, "milestones": (1,), "train_limit": 1024,
              "test_limit": 500, "batch_size": 128},
}

build_model, input_spec, setup = _cifar.build_model, _cifar.input_spec, _cifar.setup


def run(cfg: Config, ctx) -> dict:
    return _cifar.run(cfg, ctx, title=cfg.model)
