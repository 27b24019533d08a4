"""mlrepro.optim.Adadelta computes torch.optim.Adadelta's update, block by block."""

import pytest
import torch

from mlrepro.optim import Adadelta


def params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.nn.Parameter(torch.randn(1000, 37, generator=g)),  # 37,000 > block: blocked
        torch.nn.Parameter(
            torch.randn(8, 3, 5, 5, generator=g).contiguous(memory_format=torch.channels_last)
        ),  # NHWC conv weight: flattened in memory order
        torch.nn.Parameter(torch.randn(10, generator=g)),
        torch.nn.Parameter(torch.randn(6, 4, generator=g).t()),  # transposed: whole-tensor path
    ]


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_matches_torch_adadelta_step_for_step(weight_decay):
    ours, theirs = params(), params()
    kw = {"lr": 1.0, "rho": 0.95, "eps": 1e-7, "weight_decay": weight_decay}
    opt_a = Adadelta(ours, block=4096, **kw)
    opt_b = torch.optim.Adadelta(theirs, **kw)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        for a, b in zip(ours, theirs):
            grad = torch.randn(a.shape, generator=g)
            a.grad = (
                grad.clone().contiguous(memory_format=torch.channels_last)
                if a.dim() == 4
                else grad.clone()
            )
            b.grad = a.grad.clone()
        opt_a.step()
        opt_b.step()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(opt_a.state[a]["acc_delta"], opt_b.state[b]["acc_delta"])
    assert ours[1].is_contiguous(memory_format=torch.channels_last)
    # Same state keys as torch's, so checkpoints read the same.
    assert set(opt_a.state_dict()["state"][0]) == set(opt_b.state_dict()["state"][0])


def test_bad_hyperparameters_are_refused():
    with pytest.raises(ValueError, match="rho"):
        Adadelta(params(), rho=1.5)
