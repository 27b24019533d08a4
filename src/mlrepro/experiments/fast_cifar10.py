"""A fast CIFAR-10 network of ours, in the spirit of the speed-run results (airbench, Page's ResNet-9).

Claim: ours, ≥ 91 % test accuracy in ≤ 30 minutes on a 2-core CPU (10 epochs, channels_last) with a
network of airbench94's widths (118 M multiply-adds per image); the "gpu" preset (batch 1024, bf16,
compiled) aims at 94 % in seconds, as airbench reaches 94 % in 3.83 s on an A100. Measured so far
(docs/results.md): 89.5 %, 1 seed, fp32 — target not met; `--precision fp32` repeats that run.
Run:   mlrepro run fast-cifar10 --seeds 0,1,2        (GPU: --preset gpu)
Quick: mlrepro run fast-cifar10 --quick
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from . import _cifar

CLAIM = "ours: ≥ 91 % in ≤ 30 min on a 2-core CPU; gpu preset aims at 94 % in seconds (airbench: 3.83 s, A100)"
HEADLINE = ("test_accuracy", "train_time_s", "wall_time_s")


@dataclass(frozen=True)
class Config(_cifar.CifarConfig):
    model: str = "fast_cifar"  # ours, airbench94's widths (64, 256, 256); see mlrepro.nn.fast_cifar
    dropout: float = 0.0
    epochs: int = 10  # ours: calibrated to the 30-minute budget (airbench94: 9.9)
    batch_size: int = 512  # Page's ResNet-9
    lr: float = 0.4  # Page's ResNet-9 (mean loss; his 0.4/512 with a summed loss)
    weight_decay: float = 5e-4  # Page's ResNet-9
    decay_norm_and_bias: bool = False  # airbench / Page: no decay on BN parameters and biases
    schedule: Literal["step", "onecycle"] = "onecycle"  # linear warm-up then linear decay (speed-run shape)
    warmup_frac: float = 0.2  # ours
    label_smoothing: float = 0.2  # Page, airbench
    crop_pad: int = 2  # airbench: 2-px translation beats 4-px crops in short runs
    cutout: int = 0  # ours: cutout pays off only in long runs
    tta: bool = True  # airbench, Page: mirror-image TTA
    eval_each_epoch: bool = False  # ours: the test pass costs ~7 % per epoch; measured once at the end


PRESETS = {
    # GPU: batch 1024, bf16 + channels_last + torch.compile (precision/compile "auto" on CUDA).
    # Not run here (no GPU): the LR is Page's scaled linearly with the batch, untuned.
    "gpu": {"batch_size": 1024, "lr": 0.8},
    "quick": {"model": "fast_cifar_small", "epochs": 2, "batch_size": 256, "train_limit": 2048,
              "test_limit": 1000, "eval_each_epoch": True},
}

build_model, input_spec, setup = _cifar.build_model, _cifar.input_spec, _cifar.setup


def run(cfg: Config, ctx) -> dict:
    return _cifar.run(cfg, ctx, title=cfg.model)
