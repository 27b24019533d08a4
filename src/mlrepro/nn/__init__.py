"""Models: one file per family, all registered by name (`create_model("mlp_mnist")`)."""

import importlib
import pkgutil

from .normalize import Normalize
from .registry import create_model, list_models, register_model

# Importing each model-family module registers its models; every file here is a family.
for _m in pkgutil.iter_modules(__path__):
    if _m.name not in ("registry", "normalize") and not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["Normalize", "create_model", "list_models", "register_model"]
