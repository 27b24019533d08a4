"""`mlrepro export RUN_DIR --format onnx`: the file runs in onnxruntime and agrees with PyTorch."""

from mlrepro.cli import main
from mlrepro.runner import run_experiment

# Every classifier's export is checked against onnxruntime in tests/experiments/test_registry.py.


def test_export_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err
    run_dir, _ = run_experiment("linreg-line", preset="quick", out=tmp_path, verbose=False)
    assert main(["export", str(run_dir.path)]) == 2
    assert "which has no network to export" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "typo")]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "typo").exists()
