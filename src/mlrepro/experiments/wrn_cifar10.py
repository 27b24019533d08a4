"""Wide ResNet WRN-28-10 on CIFAR-10 (Zagoruyko & Komodakis, 2016), the blog's PyTorch port, fixed.

Claim: 95.84 % test accuracy (blog); paper: 96.11 % (WRN-28-10, dropout 0.3), 96.92 % with cutout
(DeVries & Taylor, 2017). Recipe: SGD 0.9 Nesterov, lr 0.1 × 0.2 at epochs 60/120/160, wd 5e-4,
batch 128, 200 epochs, crop + flip + cutout 16 px. GPU-scale: ≈ 5.2 G multiply-adds per image.
Run:   mlrepro run wrn-cifar10 --seeds 0,1,2        Quick: mlrepro run wrn-cifar10 --quick
"""

from __future__ import annotations

from dataclasses import dataclass

from ..experiment import Experiment, Preset, RunContext
from . import _cifar


@dataclass(frozen=True)
class Config(_cifar.CifarConfig):
    """The paper's recipe: CifarConfig's defaults are WRN-28-10's."""


PRESETS = {
    # WRN-10-2: the recipe's code path with a network small enough for seconds on a CPU.
    "quick": Preset(
        {
            "model": "wrn_10_2",
            "dropout": 0.0,
            "epochs": 2,
            "milestones": (1,),
            "train_limit": 1024,
            "test_limit": 500,
            "batch_size": 128,
        },
        "smoke test: WRN-10-2, 2 epochs on 1,024 images",
        "seconds",
    ),
}


def run(cfg: Config, ctx: RunContext) -> dict:
    return _cifar.run(cfg, ctx, title=cfg.model)


EXPERIMENT = Experiment(
    name="wrn-cifar10",
    config=Config,
    run=run,
    presets=PRESETS,
    summary=__doc__.splitlines()[0],
    claim="95.84 % (blog); 96.11 % (paper); 96.92 % with cutout (DeVries & Taylor)",
    headline=("test_accuracy", "train_time_s", "wall_time_s"),
    data=_cifar.data_spec,
    build_model=_cifar.build_model,
    setup=_cifar.setup,
)
