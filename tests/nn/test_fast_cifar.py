import torch
from torch import nn

from mlrepro.nn import create_model


def conv_macs(model: nn.Module, shape=(1, 3, 32, 32)) -> int:
    total = 0

    def hook(mod, _inp, out):
        nonlocal total
        total += (
            out.numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1] // mod.groups
        )

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    model.eval()(torch.zeros(shape))
    for h in handles:
        h.remove()
    return total


def test_whitening_layer_decorrelates_2x2_patches():
    torch.manual_seed(0)
    # Strongly correlated "images": smooth noise plus a shared colour component.
    # (256, 1, 32, 32)
    base = torch.nn.functional.avg_pool2d(torch.randn(256, 1, 36, 36), 5, stride=1)
    images = base.expand(-1, 3, -1, -1) + 0.1 * torch.randn(256, 3, 32, 32)
    model = create_model("fast_cifar_small")
    model.init_whitening(images, eps=0.0)
    out = nn.functional.conv2d(images, model.whiten.weight[:12])  # (256, 12, 31, 31), no bias
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12)
    cov = flat.T @ flat / len(flat)
    assert torch.allclose(cov, torch.eye(12), atol=1e-3)
    # The second half is the negation of the first (airbench's ± pairs), and it is not trained.
    assert torch.equal(model.whiten.weight[12:], -model.whiten.weight[:12])
    assert not model.whiten.weight.requires_grad


def test_multiply_adds_match_the_documented_budget():
    # Docstring formula (+ whiten):
    # 31²·24·w1·9 + 15²·w1²·9 + 15²·w1·w2·9 + 7²·w2²·9 + 7²·w2·w3·9 + 3²·w3²·9
    for name, (w1, w2, w3) in (
        ("fast_cifar_small", (32, 128, 128)),
        ("fast_cifar", (64, 256, 256)),
    ):
        expected = 9 * (
            31**2 * 24 * w1
            + 15**2 * w1 * w1
            + 15**2 * w1 * w2
            + 7**2 * w2 * w2
            + 7**2 * w2 * w3
            + 3**2 * w3 * w3
        )
        # The convolutions run before pooling: conv1 of each group at 31/15/7 px (pool after).
        got = conv_macs(create_model(name)) - 31**2 * 24 * 12  # minus the 2×2 whitening conv
        assert abs(got - expected) / expected < 0.02, (name, got, expected)
    assert 30e6 < conv_macs(create_model("fast_cifar_small")) < 36e6


def test_convolutions_start_as_identity_and_bn_scales_are_frozen():
    torch.manual_seed(0)
    model = create_model("fast_cifar_small")
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    x = torch.randn(2, 32, 15, 15)
    # The second conv of the first group (32 → 32) is exactly the identity at init.
    torch.testing.assert_close(convs[1](x), x)
    # A widening conv (32 → 128) copies its input into its first 32 outputs.
    torch.testing.assert_close(convs[2](x)[:, :32], x)
    bns = [m for m in model.features if isinstance(m, nn.BatchNorm2d)]
    assert all(not bn.weight.requires_grad and bn.bias.requires_grad for bn in bns)
    plain = create_model("fast_cifar_small", bn_scale=True, dirac=False)
    assert all(m.weight.requires_grad for m in plain.features if isinstance(m, nn.BatchNorm2d))
    assert not torch.allclose([m for m in plain.features if isinstance(m, nn.Conv2d)][1](x), x)
