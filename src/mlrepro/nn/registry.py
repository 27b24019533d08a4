"""Model registry in the style of timm: `@register_model` on a factory,
`create_model(name, **kw)`."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..errors import ConfigError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a model factory under its function name."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _MODELS[fn.__name__] = fn
    return fn


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model by name."""
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; valid: {', '.join(sorted(_MODELS))}")
    return _MODELS[name](**kwargs)


def list_models() -> list[str]:
    return sorted(_MODELS)
