"""Rebuild a run's trained model from its folder, and export it to ONNX.

The TensorFlow post's point that a model trained anywhere can be deployed anywhere: the exported
file runs in onnxruntime (or any ONNX runtime) without mlrepro or PyTorch. The run's config.json
names the experiment and its Config; the experiment's `build_model(cfg)` makes the network and the
checkpoint's "model" state_dict fills it. The exported graph takes pixels in [0, 1] and applies the
run's input normalisation itself, so a deployment needs no preprocessing code.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from .config import build_config
from .engine import RunDir
from .errors import ConfigError
from .keras.models import Sequential


class Normalize(nn.Module):
    """(x - mean) / std per channel, for inputs (N, C, H, W) or channels-last (N, H, W, C)."""

    def __init__(self, mean, std, channels_last: bool = False):
        super().__init__()
        shape = (1, 1, 1, -1) if channels_last else (1, -1, 1, 1)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(shape))

    def forward(self, x):
        return (x - self.mean) / self.std


def load_run_model(run_dir: str | os.PathLike) -> tuple[nn.Module, tuple[int, ...], dict]:
    """(model in eval mode taking [0, 1] pixels, one input's shape, the run's config record)."""
    from .experiments import get_experiment

    path = Path(run_dir)
    if not (path / "config.json").is_file():
        raise ConfigError(f"{run_dir} is not a run folder (no config.json)")
    rd = RunDir(path)
    record = rd.read_config()
    name = record.get("experiment")
    exp = get_experiment(name)
    if not hasattr(exp, "build_model"):
        raise ConfigError(f"{run_dir} is a run of {name}, which has no network to export")
    cfg = build_config(exp.Config, overrides=record["config"], what=name)
    state = rd.load_checkpoint()
    if state is None:
        raise ConfigError(f"{run_dir} has no checkpoint.pt (the run did not finish an epoch)")
    model = exp.build_model(cfg)
    if isinstance(model, Sequential):  # Keras-style: its torch module (the checkpoint's keys)
        model = model.net
    model.load_state_dict(state["model"])
    spec = exp.input_spec(cfg)
    if "mean" in spec:
        model = nn.Sequential(Normalize(spec["mean"], spec["std"], channels_last=spec.get("channels_last", False)),
                              model)
    return model.eval(), tuple(spec["shape"]), record


def export_onnx(run_dir: str | os.PathLike, output: str | os.PathLike | None = None, *,
                opset: int | None = None) -> Path:
    """Write the run's model as ONNX (input "pixels", any batch size); returns the file's path."""
    try:
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError:
        raise ConfigError("export --format onnx needs onnx and onnxscript: "
                          "pip install 'mlrepro[onnx]'") from None
    model, shape, _ = load_run_model(run_dir)
    output = Path(output) if output else Path(run_dir) / "model.onnx"
    output.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand(2, *shape)
    # Written next to the target and renamed, like every other file of a run folder.
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    os.close(fd)
    # Quiet the exporter's notes about torch internals (deprecations, torchvision ops).
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.onnx.export(model, (example,), tmp, input_names=["pixels"], output_names=["outputs"],
                              dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=opset,
                              dynamo=True, external_data=False, verbose=False)
        os.replace(tmp, output)
    finally:
        log.setLevel(level)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return output


def onnx_max_abs_diff(onnx_path: str | os.PathLike, model: nn.Module, x: torch.Tensor) -> float:
    """max |onnxruntime(x) - model(x)| over a batch: how faithfully the export runs elsewhere."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.inference_mode():
        want = model(x).float().numpy()
    return float(abs(got - want).max())
