"""Keras optimizers as recipes for torch optimizers: hyperparameters now, parameters at build time.

Defaults are Keras's. One exception, on purpose: Adadelta's learning rate is 1.0, the default of
Keras 2 in which the Keras post was written (and of torch and of the Adadelta paper); Keras 3
lowered it to 0.001, with which the post's 10 epochs would barely train.
Keras's `lr=` spelling (Keras 2) is accepted for `learning_rate=`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import torch

from .. import optim


class Optimizer:
    """Holds hyperparameters; `build(params)` returns the torch optimizer."""

    torch_class: type[torch.optim.Optimizer]
    default_lr = 0.001
    defaults: ClassVar[dict] = {}

    def __init__(self, learning_rate: float | None = None, *, lr: float | None = None, **kw):
        if learning_rate is not None and lr is not None:
            raise ValueError(f"{type(self).__name__}: give learning_rate or lr, not both")
        unknown = set(kw) - set(self.defaults)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}: unknown argument {min(unknown)!r}; "
                f"valid: learning_rate, {', '.join(self.defaults)}"
            )
        self.learning_rate = next(v for v in (learning_rate, lr, self.default_lr) if v is not None)
        self.config = {**self.defaults, **kw}

    def torch_kwargs(self) -> dict:
        return dict(self.config)

    def build(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        return self.torch_class(params, lr=self.learning_rate, **self.torch_kwargs())

    def __repr__(self) -> str:
        args = ", ".join(
            f"{k}={v!r}" for k, v in {"learning_rate": self.learning_rate, **self.config}.items()
        )
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    torch_class = torch.optim.SGD
    default_lr = 0.01
    defaults: ClassVar[dict] = {"momentum": 0.0, "nesterov": False}


class RMSprop(Optimizer):
    torch_class = torch.optim.RMSprop
    defaults: ClassVar[dict] = {"rho": 0.9, "epsilon": 1e-7, "momentum": 0.0, "centered": False}

    def torch_kwargs(self):
        c = self.config
        return {
            "alpha": c["rho"],
            "eps": c["epsilon"],
            "momentum": c["momentum"],
            "centered": c["centered"],
        }


class Adagrad(Optimizer):
    torch_class = torch.optim.Adagrad
    defaults: ClassVar[dict] = {"initial_accumulator_value": 0.1, "epsilon": 1e-7}

    def torch_kwargs(self):
        c = self.config
        return {"initial_accumulator_value": c["initial_accumulator_value"], "eps": c["epsilon"]}


class Adadelta(Optimizer):
    """torch's update rule, computed in cache-sized blocks (`mlrepro.optim.Adadelta`)."""

    torch_class = optim.Adadelta
    default_lr = 1.0  # Keras 2, the post's version (Keras 3: 0.001); see the module docstring
    defaults: ClassVar[dict] = {"rho": 0.95, "epsilon": 1e-7}

    def torch_kwargs(self):
        return {"rho": self.config["rho"], "eps": self.config["epsilon"]}


class Adam(Optimizer):
    """Keras adds epsilon to √v before bias correction, torch after; the difference is
    negligible."""

    torch_class = torch.optim.Adam
    defaults: ClassVar[dict] = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False}

    def torch_kwargs(self):
        c = self.config
        return {"betas": (c["beta_1"], c["beta_2"]), "eps": c["epsilon"], "amsgrad": c["amsgrad"]}

    def build(self, params):
        params = list(params)
        # torch's fused kernel: one pass per tensor instead of a dozen (CPU and CUDA).
        fused = all(p.device.type in ("cpu", "cuda") for p in params) or None
        return self.torch_class(params, lr=self.learning_rate, fused=fused, **self.torch_kwargs())


class AdamW(Adam):
    torch_class = torch.optim.AdamW
    defaults: ClassVar[dict] = {"weight_decay": 0.004, **Adam.defaults}

    def torch_kwargs(self):
        return {**super().torch_kwargs(), "weight_decay": self.config["weight_decay"]}


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "adadelta": Adadelta,
    "adagrad": Adagrad,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "sgd": SGD,
}


def get(identifier: str | Optimizer | torch.optim.Optimizer) -> Optimizer | torch.optim.Optimizer:
    """An optimizer from a name ('adadelta'), an Optimizer object, or a ready torch optimizer."""
    if isinstance(identifier, (Optimizer, torch.optim.Optimizer)):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in OPTIMIZERS:
            raise ValueError(
                f"Unknown optimizer: {identifier!r}. Valid: {', '.join(map(repr, OPTIMIZERS))}"
            )
        return OPTIMIZERS[key]()
    raise TypeError(
        f"Could not interpret optimizer: {identifier!r}. Give a name "
        f"({', '.join(map(repr, OPTIMIZERS))}) or an optimizer object such as Adadelta()."
    )


__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSprop",
    "get",
]
