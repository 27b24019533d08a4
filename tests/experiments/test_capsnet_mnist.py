import pytest
import torch

from mlrepro.engine import RunDir, runtime
from mlrepro.experiment import RunContext
from mlrepro.experiments import capsnet_mnist


def _ctx(tmp_path):
    return RunContext(RunDir(tmp_path), 0, torch.device("cpu"))


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_trains_in_bf16_only_where_the_hardware_has_it(
    monkeypatch, native, tmp_path
):
    monkeypatch.setattr(runtime, "native_bf16", lambda device: native)
    cfg = capsnet_mnist.Config(
        **{**capsnet_mnist.PRESETS["cpu-1epoch"], "caps_init_std": 0.02, "beta2": 0.99}
    )
    assert cfg.precision == "auto"
    model = capsnet_mnist.build_model(cfg)
    learner = capsnet_mnist.make_learner(model, cfg, _ctx(tmp_path), steps_per_epoch=100)
    assert learner.precision == ("bf16" if native else "fp32")
    assert learner.optimizer.param_groups[0]["betas"][1] == 0.99  # beta1 is cycled by 1cycle
    assert model.digits.weight.std().item() == pytest.approx(0.02, rel=0.02)


def test_a_non_positive_init_scale_is_refused():
    with pytest.raises(ValueError, match="--caps-init-std must be > 0, got 0"):
        capsnet_mnist.Config(caps_init_std=0)


@pytest.mark.parametrize("cycle", [True, False])
def test_one_cycle_moves_adams_beta1_only_when_asked(cycle, tmp_path):
    cfg = capsnet_mnist.Config(**{**capsnet_mnist.PRESETS["quick"], "cycle_momentum": cycle})
    model = capsnet_mnist.build_model(cfg)
    learner = capsnet_mnist.make_learner(model, cfg, _ctx(tmp_path), steps_per_epoch=100)
    assert learner.optimizer.param_groups[0]["betas"][0] == (0.95 if cycle else 0.9)


def test_an_adam_beta2_outside_0_1_is_refused_before_training():
    with pytest.raises(ValueError, match=r"--beta2 must be >= 0 and < 1, got 1.5"):
        capsnet_mnist.Config(beta2=1.5)
