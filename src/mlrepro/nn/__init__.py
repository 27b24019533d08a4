"""Models: one file per family, all registered by name (`create_model("mlp_mnist")`)."""

from . import convnet, mlp, wide_resnet  # noqa: F401  (registers their models)
from .registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
