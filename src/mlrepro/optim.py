"""Optimizers where torch's own is slow on a CPU: Adadelta computed block by block.

torch.optim.Adadelta makes ten element-wise passes over every parameter tensor per step (no fused
version exists). For the Keras post's convnet (3.5 M parameters; weights, gradients and two state
tensors ≈ 56 MB, more than this CPU's 32 MB L3) every pass goes to DRAM, and the optimizer step
costs about as much as the forward and backward passes together. Here the same update runs on
blocks of 256 K elements whose working set stays in cache, so DRAM is read and written about once.
The arithmetic is torch's, operation for operation (`tests/test_optim.py` compares them).
"""

from __future__ import annotations

import torch

BLOCK = 1 << 18  # elements: 1 MB per float32 array, ≈ 6 MB of working set per block


class Adadelta(torch.optim.Optimizer):
    """Adadelta (Zeiler, 2012) with torch's update rule and defaults, blocked for cache locality.

    Per element: v ← ρv + (1-ρ)g²;  Δ = √(u + ε) / √(v + ε) · g;  u ← ρu + (1-ρ)Δ²;  θ ← θ - lr·Δ.
    """

    def __init__(
        self,
        params,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        block: int = BLOCK,
    ):
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Adadelta: rho must be in [0, 1], got {rho}")
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError("Adadelta: lr, eps and weight_decay must be >= 0")
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay})
        self.block = block

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        blocks = []
        for group in self.param_groups:
            hyper = (group["lr"], group["rho"], group["eps"], group["weight_decay"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Adadelta does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["acc_delta"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                tensors = (p, p.grad, state["square_avg"], state["acc_delta"])
                flat = _flat_views(tensors)
                if flat is None:  # unusual layouts: whole tensors, as torch does
                    blocks.append((*tensors, *hyper))
                else:
                    blocks += [
                        (*(t[i : i + self.block] for t in flat), *hyper)
                        for i in range(0, p.numel(), self.block)
                    ]
        for args in blocks:
            _update(*args)
        return loss


def _flat_views(tensors) -> list[torch.Tensor] | None:
    """1-D views in memory order, if all tensors are dense with one layout (the update is
    element-wise, so memory order serves as well as logical order); else None."""
    p = tensors[0]
    dense = p.is_contiguous() or (
        p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last)
    )
    if not dense or any(t.stride() != p.stride() for t in tensors):
        return None
    return [t.as_strided((t.numel(),), (1,)) for t in tensors]


def _update(p, g, square_avg, acc_delta, lr, rho, eps, wd):
    """torch.optim.Adadelta's single-tensor update, in place on (views of) the tensors."""
    if wd:
        g = g.add(p, alpha=wd)
    square_avg.mul_(rho).addcmul_(g, g, value=1 - rho)
    std = square_avg.add(eps).sqrt_()
    delta = acc_delta.add(eps).sqrt_().div_(std).mul_(g)
    acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
    p.add_(delta, alpha=-lr)
