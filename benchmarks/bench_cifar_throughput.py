"""Training throughput (images/s) of every registered CIFAR model: fp32 vs bf16 + channels_last.

One full train step (forward, loss, backward, SGD-Nesterov step) on random 3×32×32 batches, on
whatever device is present (CUDA if available). Modes, all in the same run:
  fp32         NCHW, float32 (the peer)
  fp32+cl      channels_last, float32
  bf16+cl      channels_last, bf16 autocast
  fp32+cl+compile / bf16+cl+compile   with --compile (torch.compile; compile time excluded)
The ratio printed is each mode's images/s over fp32's. Each mode gets one warm-up step, then
steps until --min-seconds have passed.

Run:   python benchmarks/bench_cifar_throughput.py
       python benchmarks/bench_cifar_throughput.py --models fast_cifar --compile
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch import nn

from mlrepro.engine.runtime import hardware_info
from mlrepro.nn import create_model, list_models

CIFAR_MODELS = ("fast_cifar_small", "fast_cifar", "wrn_10_2", "wrn_16_4", "wrn_16_8", "wrn_28_10")
# CPU batch sizes: one step of the big WRNs in bf16 takes tens of seconds on a 2-core CPU.
CPU_BATCH = {
    "fast_cifar_small": 128,
    "fast_cifar": 64,
    "wrn_10_2": 64,
    "wrn_16_4": 16,
    "wrn_16_8": 8,
    "wrn_28_10": 8,
}


def step_fn(model: nn.Module, opt, x, y, bf16: bool):
    loss_fn = nn.CrossEntropyLoss()

    def step():
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def measure(name: str, mode: str, batch: int, device: torch.device, min_seconds: float) -> float:
    torch.manual_seed(0)
    model = create_model(name).to(device)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    if "cl" in mode.split("+"):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if mode.endswith("compile"):
        model.compile()
    opt = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9, nesterov=True
    )
    step = step_fn(model.train(), opt, x, y, bf16=mode.startswith("bf16"))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    step()  # warm-up (and compilation)
    if mode.endswith("compile"):
        step()
    sync()
    start, n = time.perf_counter(), 0
    while True:
        step()
        n += 1
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return n * batch / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(CIFAR_MODELS))
    p.add_argument("--batch", type=int, default=0, help="0: 512 on CUDA, CPU_BATCH on CPU")
    p.add_argument("--min-seconds", type=float, default=3.0)
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd modes")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(list_models())
    if unknown:
        raise SystemExit(
            f"unknown model(s) {sorted(unknown)}; registered: {', '.join(list_models())}"
        )
    modes = ["fp32", "fp32+cl", "bf16+cl"] + (
        ["fp32+cl+compile", "bf16+cl+compile"] if args.compile else []
    )
    hw = hardware_info(device)
    print(
        f"# {hw.get('device_name', hw['processor'])}, torch {hw['torch']}, "
        f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}"
    )
    print(f"{'model':<16} {'batch':>5} " + " ".join(f"{m:>22}" for m in modes))
    for name in models:
        batch = args.batch or (512 if device.type == "cuda" else CPU_BATCH.get(name, 32))
        rates = [measure(name, mode, batch, device, args.min_seconds) for mode in modes]
        cells = [f"{r:9.1f} img/s ({r / rates[0]:4.2f}x)" for r in rates]
        print(f"{name:<16} {batch:>5} " + " ".join(f"{c:>22}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
