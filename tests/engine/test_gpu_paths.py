"""The engine's GPU code paths on one CUDA device: bf16 autocast, channels_last, torch.compile, the
train step through DistributedDataParallel over NCCL, and ONNX export of a CUDA-trained run.

Marked gpu: left out of the default run and skipped without CUDA. `pytest -m gpu` runs them;
benchmarks/gpu_evidence.py runs them as its last stage.
"""

import socket

import numpy as np
import pytest
import torch
from torch import distributed as dist
from torch import nn

from mlrepro.engine import Learner, resolve_precision

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
DEVICE = "cuda"


def batches(n: int = 4, size: int = 32, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """n fixed batches of random 3×32×32 images with random labels (on the CPU, as loaders give)."""
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.rand(size, 3, 32, 32, generator=g), torch.randint(0, 10, (size,), generator=g))
        for _ in range(n)
    ]


def small_net() -> nn.Module:
    """A small convnet with BN, the same weights on every call."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, stride=2, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


def learner(model: nn.Module, **kw) -> Learner:
    optim = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return Learner(model, optim, nn.CrossEntropyLoss(), metrics=["accuracy"], device=DEVICE, **kw)


def losses(lrn: Learner, epochs: int = 3) -> list[float]:
    return lrn.fit(batches(), epochs).history["loss"]


def test_bf16_autocast_runs_the_forward_in_bf16_and_trains_like_fp32():
    assert resolve_precision("auto", torch.device(DEVICE)) == "bf16"  # native on CUDA
    fp32, bf16 = learner(small_net(), precision="fp32"), learner(small_net(), precision="bf16")
    with bf16.autocast():
        assert bf16.model(torch.rand(2, 3, 32, 32, device=DEVICE)).dtype == torch.bfloat16
    a, b = losses(fp32), losses(bf16)
    assert b[-1] < b[0]  # it learns the fixed batches
    assert np.allclose(a, b, atol=0.05), (a, b)  # bf16's 8-bit mantissa, not a different model
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())  # fp32 master weights


def test_channels_last_keeps_convolutions_nhwc_and_gives_the_same_results():
    plain, nhwc = learner(small_net()), learner(small_net(), channels_last=True)
    assert nhwc.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(8, 3, 32, 32)
    assert nhwc.prepare_input(x).is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want = plain.model.eval()(plain.prepare_input(x))
        got = nhwc.model.eval()(nhwc.prepare_input(x))
    torch.testing.assert_close(got, want, atol=5e-3, rtol=5e-3)  # cuDNN picks other kernels (TF32)
    a, b = losses(plain), losses(nhwc)
    assert np.allclose(a, b, atol=0.02), (a, b)


def test_torch_compile_matches_eager_keeps_plain_state_dict_keys_and_trains():
    eager, compiled = small_net().to(DEVICE).eval(), small_net().to(DEVICE).eval()
    compiled.compile()  # in place, as the CIFAR experiments do
    assert list(compiled.state_dict()) == list(eager.state_dict())  # checkpoints stay loadable
    x = torch.rand(8, 3, 32, 32, device=DEVICE)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), eager(x), atol=1e-3, rtol=1e-3)
    lrn = learner(compiled.train(), precision="bf16", channels_last=True)  # the GPU presets' path
    trained = losses(lrn)
    assert all(np.isfinite(trained)) and trained[-1] < trained[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_train_step_through_ddp_over_nccl_equals_the_plain_step():
    if not dist.is_available() or not dist.is_nccl_available():
        pytest.skip("torch.distributed with NCCL is not available")
    plain = learner(small_net())
    want = losses(plain, 2)
    torch.cuda.set_device(0)
    dist.init_process_group(
        "nccl", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1
    )
    try:
        lrn = learner(small_net())
        # The Learner wraps its model in DDP only for world_size > 1, and one GPU cannot hold two
        # NCCL ranks: wrap it here as the Learner does, so its train step runs through DDP (the
        # gradients all-reduced over NCCL by DDP's hooks).
        lrn.train_model = nn.parallel.DistributedDataParallel(lrn.model, device_ids=[0])
        got = losses(lrn, 2)
        probe = torch.ones(3, device=DEVICE)
        dist.all_reduce(probe)
        assert probe.tolist() == [1.0, 1.0, 1.0]
    finally:
        dist.destroy_process_group()
    assert np.allclose(got, want, rtol=1e-4, atol=1e-5), (got, want)
    for p, q in zip(lrn.model.parameters(), plain.model.parameters()):
        torch.testing.assert_close(p, q, atol=1e-4, rtol=1e-4)


def test_onnx_export_of_a_cuda_trained_run_agrees_with_pytorch_on_the_gpu(tmp_path):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    from mlrepro.export import export_onnx, onnx_max_abs_diff
    from mlrepro.runfolder import load_run_model
    from mlrepro.runner import run_experiment

    run_dir, _ = run_experiment(
        "mnist-cnn", preset="quick", out=tmp_path, device=DEVICE, verbose=False
    )
    assert run_dir.read_config()["hardware"]["device"].startswith("cuda")
    path = export_onnx(run_dir.path, tmp_path / "model.onnx")
    model, spec, _ = load_run_model(run_dir.path)  # on the CPU, from the CUDA-trained checkpoint
    x = torch.rand(64, *spec.shape)
    assert onnx_max_abs_diff(path, model, x) <= 1e-4
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.inference_mode():
        want = model.to(DEVICE)(x.to(DEVICE)).float().cpu().numpy()
    assert np.abs(got - want).max() <= 1e-3  # the GPU's kernels (TF32) against onnxruntime's
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.98
