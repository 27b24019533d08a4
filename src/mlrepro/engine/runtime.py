"""Seeding, RNG state capture/restore, device choice and a description of the hardware."""

from __future__ import annotations

import atexit
import os
import platform
import random
from typing import cast

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_rng_state() -> dict:
    """All global RNG states, as tensors/ints only so `torch.load(weights_only=True)` accepts
    them."""
    kind, keys, pos, has_gauss, gauss = cast(tuple, np.random.get_state(legacy=True))
    state = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of `get_rng_state`."""
    v, internal, g = state["python"]
    random.setstate((v, tuple(internal), g))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """'auto' picks cuda > mps > cpu; anything else is taken as given (and checked)."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(
            f"unknown device {name!r} (expected auto, cpu, cuda, cuda:N or mps)"
        ) from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name!r} requested but CUDA is not available here")
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 runs in hardware here (CUDA, or a CPU with AVX512-BF16 or AMX).

    An AVX2-only CPU emulates bf16 and trains slower than in fp32, so "auto" precision picks bf16
    only where this is true.
    """
    if device.type == "cuda":
        return True
    cpu = getattr(torch, "cpu", None)
    return device.type == "cpu" and any(
        getattr(cpu, f, lambda: False)()
        for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )


def resolve_precision(precision: str, device: torch.device) -> str:
    """ "fp32" or "bf16" as given; "auto" → bf16 where `native_bf16(device)`, else fp32."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def init_distributed() -> tuple[int, int, int]:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK);
    (rank, world, local).

    NCCL when CUDA is present (each process on GPU LOCAL_RANK), gloo on CPU. Without torchrun's
    variables this is a no-op returning (0, 1, 0).
    """
    from torch import distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        atexit.register(dist.destroy_process_group)
    return rank, world, local


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_info(device: torch.device | None = None) -> dict:
    """What the numbers were measured on."""
    info = {
        "platform": platform.platform(),
        "processor": _cpu_name(),
        # torch's own dispatch level (e.g. AVX2 or AVX512): decides whether bf16 is native or
        # emulated.
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": np.__version__,
    }
    if torch.cuda.is_available():
        info["cuda"] = torch.version.cuda
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if device is not None:
        info["device"] = str(device)
        if device.type == "cuda":
            info["device_name"] = torch.cuda.get_device_name(device)
    return info
