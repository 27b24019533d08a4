"""A fast CIFAR-10 network of ours, in the spirit of the speed-run results (airbench, Page's ResNet-9).

Claim: ours, ≥ 91 % test accuracy in ≤ 30 minutes on a 2-core CPU with a network of airbench94's
widths (118 M multiply-adds per image) and airbench94's training recipe; the "gpu" preset (batch 1024,
bf16, compiled) aims at 94 % in seconds, as airbench reaches 94 % in 3.83 s on an A100. Measured
(docs/results.md, CIFAR-10 JPEG copy): 91.25 ± 0.22 % in 25.4 ± 2.3 minutes with both cores for one
run (--preset two-threads, 22 epochs); 90.69 ± 0.21 % in 27.6 minutes at one core per run (12 epochs).
Run:   mlrepro run fast-cifar10 --preset two-threads --threads 2 --seeds 0,1,2
       mlrepro run fast-cifar10 --seeds 0,1,2        (GPU: --preset gpu)
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
    epochs: int = 12  # ours: fits the 30-minute budget at 1 thread (airbench94: 9.9 epochs for 94 % on PNGs)
    batch_size: int = 512  # ours (airbench94: 1024; its LR and decay are per example, so they carry over)
    # airbench94's hyperparameters, converted from its per-1024-example, summed-loss form
    # (lr 11.5 / (1024 · (1 + 1/(1 − 0.85))) per example, decay 0.0153 per 1024 examples) to torch's
    # mean-loss SGD at batch 512: lr = 11.5 · 512 / 7850.7 = 0.75, weight_decay = 0.0153 / 11.5.
    lr: float = 0.75
    momentum: float = 0.85  # airbench94
    weight_decay: float = 0.0153 / 11.5  # airbench94 (= 1.33e-3; decay per step = lr × this)
    decay_norm_and_bias: bool = True  # airbench94 decays everything, the BN shifts by 1/64 (next line)
    norm_lr_scale: float = 64.0  # airbench94: BN shifts at 64× the LR
    schedule: Literal["step", "onecycle"] = "onecycle"  # airbench94's triangle:
    warmup_frac: float = 0.23  # 0.2 × lr → lr over 23 % of the steps,
    lr_start_frac: float = 0.2
    lr_end_frac: float = 0.07  # → 0.07 × lr at the end
    lookahead_every: int = 5  # airbench94: Lookahead-EMA every 5 steps from epoch 3, decay 0.95^5·(t/T)^3
    label_smoothing: float = 0.2  # Page, airbench
    crop_pad: int = 2  # airbench: 2-px translation beats 4-px crops in short runs
    crop_pad_mode: Literal["constant", "reflect"] = "reflect"  # airbench94
    cutout: int = 0  # ours: cutout pays off only in long runs
    tta: bool = True  # airbench, Page: mirror-image TTA
    tta_translate: int = 1  # airbench94's TTA level 2: also the views shifted 1 px
    eval_each_epoch: bool = False  # ours: the test pass costs ~7 % per epoch; measured once at the end


PRESETS = {
    # GPU: airbench94's batch of 1024 (same per-example LR: 11.5 · 1024 / 7850.7 = 1.5) and ~its 9.9
    # epochs; bf16 + channels_last + torch.compile (precision/compile "auto" on CUDA). Not run here.
    "gpu": {"batch_size": 1024, "lr": 1.5, "epochs": 10},
    # Both cores for one run (2 threads): 22 epochs fit the 30 minutes with a margin: 91.25 ± 0.22 %
    # in 22.8-27.0 min over 3 seeds. 24 epochs took 25.7 min on a fast stretch of this VM and 31.2 min
    # on a slow one (60-73 vs 71-85 s per epoch; docs/results.md).
    "two-threads": {"epochs": 22},
    "quick": {"model": "fast_cifar_small", "epochs": 2, "batch_size": 256, "train_limit": 2048,
              "test_limit": 1000, "eval_each_epoch": True},
}

build_model, input_spec, setup = _cifar.build_model, _cifar.input_spec, _cifar.setup


def run(cfg: Config, ctx) -> dict:
    return _cifar.run(cfg, ctx, title=cfg.model)
