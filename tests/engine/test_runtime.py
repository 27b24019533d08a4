import pytest
import torch

from mlrepro.engine import runtime
from mlrepro.engine.runtime import native_bf16, resolve_precision


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_where_bf16_runs_in_hardware(monkeypatch, native):
    monkeypatch.setattr(runtime, "native_bf16", lambda device: native)
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")
    # An explicit choice is kept whatever the hardware.
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"


def test_native_bf16_follows_the_cpu_flags(monkeypatch):
    cpu = torch.cpu
    monkeypatch.setattr(cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert not native_bf16(torch.device("cpu"))
    monkeypatch.setattr(cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert native_bf16(torch.device("cpu"))
    assert not native_bf16(torch.device("meta"))


def test_unknown_precision_is_a_clear_error():
    with pytest.raises(ValueError, match="precision must be 'auto', 'fp32' or 'bf16', got 'fp16'"):
        resolve_precision("fp16", torch.device("cpu"))


@pytest.mark.parametrize("native", [True, False])
def test_a_learner_resolves_auto_precision_itself(monkeypatch, native):
    from mlrepro.engine import Learner

    monkeypatch.setattr(runtime, "native_bf16", lambda device: native)
    learner = Learner(torch.nn.Linear(2, 2), device="cpu", precision="auto")
    assert learner.precision == ("bf16" if native else "fp32")
