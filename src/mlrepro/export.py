"""Rebuild a run's trained model from its folder, and export it to ONNX.

The TensorFlow post's point that a model trained anywhere can be deployed anywhere: the exported
file runs in onnxruntime (or any ONNX runtime) without mlrepro or PyTorch. The model is rebuilt
from the run folder (`mlrepro.runfolder.load_run_model`); the exported graph takes pixels in [0, 1]
and applies the run's input normalisation itself, so a deployment needs no preprocessing code.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from .errors import ConfigError
from .nn import Normalize  # noqa: F401  (its old home; import it from mlrepro.nn)
from .runfolder import load_run_model
from .runner import check_replaceable, check_writable


def export_onnx(
    run_dir: str | os.PathLike, output: str | os.PathLike | None = None, *, opset: int | None = None
) -> Path:
    """Write the run's model as ONNX (input "pixels", any batch size); returns the file's path."""
    try:
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError:
        raise ConfigError(
            "export --format onnx needs onnx and onnxscript: pip install 'mlrepro[onnx]'"
        ) from None
    model, spec, _ = load_run_model(run_dir, "export")
    output = Path(output) if output else Path(run_dir) / "model.onnx"
    if output.is_dir():
        raise ConfigError(f"--output: {output} is a folder; expected a file name")
    check_writable(output.parent, "--output")
    check_replaceable(output, "--output", "onnx")
    output.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand(2, *spec.shape)
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
            torch.onnx.export(
                model,
                (example,),
                tmp,
                input_names=["pixels"],
                output_names=["outputs"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                opset_version=opset,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
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
