"""The experiment contract, over the whole registry: every preset validates, every quick preset
runs, every trainable experiment resumes exactly after being killed, and every classifier's run
folder works with `attack`, `export` (onnxruntime parity) and, where it has a setup, `lr-find`."""

import json

import pytest
import torch

from mlrepro.engine import RunDir
from mlrepro.experiment import Experiment, Preset
from mlrepro.experiments import EXPERIMENTS, all_experiments, get_experiment
from mlrepro.runner import lr_find_experiment, run_experiment

NAMES = list(EXPERIMENTS)
CLASSIFIERS = [e.name for e in all_experiments() if e.data is not None]
# Fitted in milliseconds by a classic estimator: nothing to checkpoint or resume.
NOT_TRAINED = {"linreg-line", "kmeans-cola"}
_runs: dict[str, tuple] = {}


def _skip_without_extras(exp: Experiment) -> None:
    for module in exp.requires:  # an optional extra, e.g. vizdoom for RL
        pytest.importorskip(module)


def quick_run(name, out, data_dir):
    """One quick run per experiment, shared by the tests below."""
    if name not in _runs:
        _runs[name] = run_experiment(
            name,
            preset="quick",
            out=out / "quick",
            device="cpu",
            data_dir=str(data_dir) if data_dir else None,
            verbose=False,
        )
    return _runs[name]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("registry")


@pytest.mark.parametrize("name", NAMES)
def test_every_preset_validates_and_is_described(name):
    exp = get_experiment(name)
    assert exp.summary and exp.claim and exp.headline
    module_doc = __import__(exp.run.__module__, fromlist=["_"]).__doc__
    assert "Claim:" in module_doc and "Run:" in module_doc
    for key, preset in exp.presets.items():
        assert isinstance(preset, Preset) and preset.about and preset.time, key
        exp.make_config(key)
    for f in exp.config.__dataclass_fields__.values():  # every option says where it comes from
        assert f.metadata.get("source") and f.metadata.get("help"), f.name


@pytest.mark.parametrize("name", NAMES)
def test_quick_preset_writes_headline_metrics_and_data_provenance(name, out, data_dir):
    exp = get_experiment(name)
    _skip_without_extras(exp)
    run_dir, _ = quick_run(name, out, data_dir)
    saved = json.loads((run_dir.path / "metrics.json").read_text())
    assert isinstance(saved[exp.headline[0]], float)
    for key in exp.headline:  # a headline may be null when its target was not reached
        assert key in saved and (saved[key] is None or isinstance(saved[key], float)), key
    assert saved["wall_time_s"] > 0  # recorded; no time limit here (speed lives in benchmarks/)
    assert list((run_dir.path / "plots").glob("*.png"))
    config = json.loads((run_dir.path / "config.json").read_text())
    if name not in NOT_TRAINED and "dqn" not in name:  # these read a dataset: say which
        assert config["data"] and saved["data"] == config["data"]
        assert all("sample" in p for p in config["data"].values())


def _comparable(metrics: dict) -> dict:
    """Metrics without the ones that measure time or the machine."""
    return {
        k: v
        for k, v in metrics.items()
        if not (k.endswith("_s") or k.endswith("per_s") or k in ("load_avg_1m", "threads"))
    }


@pytest.mark.parametrize("name", NAMES)
def test_a_killed_run_resumes_to_the_same_metrics(name, out, data_dir, monkeypatch):
    exp = get_experiment(name)
    _skip_without_extras(exp)
    run_dir, full = quick_run(name, out, data_dir)
    if not run_dir.checkpoints():
        assert name in NOT_TRAINED, f"{name} trains but keeps no checkpoint"
        return
    assert name not in NOT_TRAINED
    save = RunDir.save_checkpoint

    def save_then_die(self, state, stage=None, **kw):
        save(self, state, stage, **kw)
        raise KeyboardInterrupt  # killed right after the first checkpoint is on disk

    monkeypatch.setattr(RunDir, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(
            name,
            preset="quick",
            out=out / "killed",
            device="cpu",
            data_dir=str(data_dir) if data_dir else None,
            verbose=False,
        )
    monkeypatch.setattr(RunDir, "save_checkpoint", save)
    (killed,) = (out / "killed" / name).iterdir()
    assert not (killed / "metrics.json").exists() and list(killed.glob("checkpoint*.pt"))
    _, resumed = run_experiment(resume=str(killed), device="cpu", verbose=False)
    assert _comparable(resumed) == _comparable(full)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_a_classifier_run_can_be_attacked_exported_and_swept(name, out, data_dir, capsys):
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    from mlrepro.export import export_onnx, onnx_max_abs_diff
    from mlrepro.runfolder import attack_run, load_run_model, test_inputs

    exp = get_experiment(name)
    run_dir, _ = quick_run(name, out, data_dir)
    data = str(data_dir) if data_dir else None
    m, json_path, png_path = attack_run(run_dir.path, "fgsm", 0.1, limit=64, data_dir=data)
    assert m["n"] == 64 and 0 <= m["adversarial_accuracy"] <= m["clean_accuracy"] <= 1
    assert json_path.exists() and png_path.exists()

    onnx_path = export_onnx(run_dir.path, out / f"{name}.onnx")
    model, spec, _ = load_run_model(run_dir.path)
    x, _, _, _ = test_inputs(spec, data, 32)
    assert tuple(x.shape[1:]) == spec.shape
    diff = onnx_max_abs_diff(onnx_path, model, x)
    print(f"{name}: onnxruntime vs PyTorch max |Δ| = {diff:.2e}")  # pytest -rP
    assert diff <= 1e-4

    if exp.setup is not None:
        lr_dir, result = lr_find_experiment(
            name,
            preset="quick",
            out=out / "lr",
            device="cpu",
            data_dir=data,
            verbose=False,
            num_steps=8,
        )
        assert len(result.lrs) >= 2 and (lr_dir.path / "plots" / "lr_find.png").exists()


def test_the_registry_knows_which_experiments_are_classifiers():
    assert set(CLASSIFIERS) == {
        "mnist-mlp",
        "mnist-cnn",
        "fashion-mnist-cnn",
        "mnist-keras",
        "adv-train-mnist",
        "capsnet-mnist",
        "capsnet-multimnist",
        "fast-cifar10",
        "wrn-cifar10",
        "wrn-cifar10-onecycle",
    }
    assert torch.get_num_threads() >= 1
