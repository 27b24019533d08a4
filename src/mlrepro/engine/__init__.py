"""The shared training engine. Depends on nothing else in mlrepro."""

from .callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    History,
    LambdaCallback,
    LookaheadEMA,
    ProgressBar,
    RunLogger,
    StopTraining,
)
from .learner import METRICS, Learner, accuracy
from .rundir import (
    RunDir,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)
from .runtime import (
    get_rng_state,
    hardware_info,
    native_bf16,
    resolve_device,
    resolve_precision,
    seed_everything,
    set_rng_state,
)

__all__ = [
    "METRICS",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "Learner",
    "LookaheadEMA",
    "ProgressBar",
    "RunDir",
    "RunLogger",
    "StopTraining",
    "accuracy",
    "atomic_torch_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "get_rng_state",
    "hardware_info",
    "native_bf16",
    "resolve_device",
    "resolve_precision",
    "seed_everything",
    "set_rng_state",
]
