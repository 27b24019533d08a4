"""`mlrepro attack RUN_DIR`: a trained run's model under attack, with its metrics and example
grid."""

import json

import pytest

from mlrepro.cli import main
from mlrepro.runner import run_experiment


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("runs")
    run_dir, _ = run_experiment(
        "mnist-mlp",
        preset="quick",
        out=out,
        device="cpu",
        data_dir=str(data_dir) if data_dir else None,
        verbose=False,
    )
    return run_dir.path


def test_attack_a_run_writes_metrics_and_the_example_grid(mlp_run, capsys):
    path = mlp_run
    assert main(["attack", str(path), "--attack", "fgsm", "--eps", "0.1", "--limit", "300"]) == 0
    out = capsys.readouterr().out
    assert "adversarial_accuracy:" in out and "attack_success_rate:" in out
    m = json.loads((path / "attacks" / "fgsm-eps0.1.json").read_text())
    assert m["n"] == 300 and m["clean_accuracy"] > 0.7
    assert m["adversarial_accuracy"] < m["clean_accuracy"] - 0.2  # FGSM at 0.1 breaks an MLP
    assert 0.099 <= m["mean_linf"] <= 0.1 + 1e-6
    assert (path / "plots" / "attack-fgsm-eps0.1.png").stat().st_size > 1000

    assert (
        main(
            [
                "attack",
                str(path),
                "--attack",
                "pgd",
                "--eps",
                "0.1",
                "--steps",
                "5",
                "--limit",
                "100",
                "--target",
                "3",
            ]
        )
        == 0
    )
    t = json.loads((path / "attacks" / "pgd-eps0.1-target3.json").read_text())
    assert t["target"] == 3 and t["attack_success_rate"] > 0.3


def test_attack_errors_are_one_line(mlp_run, tmp_path, capsys):
    path = mlp_run
    assert main(["attack", str(path), "--eps", "-0.1"]) == 2
    assert "eps must be a finite number >= 0" in capsys.readouterr().err
    assert main(["attack", str(path), "--target", "12", "--limit", "10"]) == 2
    assert "--target must be a class index in [0, 9], got 12" in capsys.readouterr().err
    assert main(["attack", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err
