"""`mlrepro export RUN_DIR --format onnx`: the file runs in onnxruntime and agrees with PyTorch."""

import numpy as np
import pytest
import torch

from mlrepro.cli import main
from mlrepro.data import load_dataset
from mlrepro.export import load_run_model
from mlrepro.runner import run_experiment

# A couple of dozen steps: enough for a checkpoint with non-trivial weights.
# (mnist-mlp goes through the same path as mnist-cnn: build_model + input normalisation.)
TINY = {"mnist-cnn": {"train_limit": 300, "val_size": 50, "test_limit": 100},
        "mnist-keras": {"train_limit": 100, "test_limit": 100}}


@pytest.mark.parametrize("name", list(TINY))
def test_exported_onnx_matches_pytorch_on_a_test_batch(name, tmp_path, data_dir, capsys):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    run_dir, _ = run_experiment(name, preset="quick", overrides=TINY[name], out=tmp_path, device="cpu",
                                data_dir=str(data_dir) if data_dir else None, verbose=False)
    out = tmp_path / "model.onnx"
    assert main(["export", str(run_dir.path), "--format", "onnx", "-o", str(out)]) == 0
    assert "max |Δ| = " in capsys.readouterr().out

    model, shape, _ = load_run_model(run_dir.path)
    test = load_dataset("mnist", "test", data_dir)
    x = test.images[:64].float().div(255).reshape(-1, *shape)  # pixels in [0, 1]: no preprocessing
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"pixels": x.numpy()})
    with torch.inference_mode():
        want = model(x).numpy()
    assert got.shape == want.shape == (64, 10)
    diff = float(np.abs(got - want).max())
    print(f"{name}: onnxruntime vs PyTorch on 64 test images, max |Δ| = {diff:.2e}")  # pytest -rP
    assert diff <= 1e-4
    assert (got.argmax(1) == want.argmax(1)).all()


def test_export_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err
    run_dir, _ = run_experiment("linreg-line", preset="quick", out=tmp_path, verbose=False)
    assert main(["export", str(run_dir.path)]) == 2
    assert "which has no network to export" in capsys.readouterr().err
