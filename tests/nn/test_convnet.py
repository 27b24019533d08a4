"""The posts' MNIST convnets: the ReLU after the pool is the posts' ReLU before it, exactly."""

import pytest
import torch
from torch import nn

from mlrepro.nn import create_model


def posts_order(model: nn.Module) -> nn.Sequential:
    """The same layers in the posts' order: conv → ReLU → pool (sharing the model's weights)."""
    f = model.features
    convs = [m for m in f if isinstance(m, nn.Conv2d)]
    relu = any(isinstance(m, nn.ReLU) for m in f)
    layers: list[nn.Module] = []
    for conv in convs:
        layers += [conv, *([nn.ReLU()] if relu else []), nn.MaxPool2d(2)]
    return nn.Sequential(*layers, model.classifier)


@pytest.mark.parametrize(
    "name,kw",
    [
        ("tf_cnn_mnist", {"init": "torch"}),
        ("keras_convnet_mnist", {"conv_activation": True}),
        ("keras_convnet_mnist", {}),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_pool_then_relu_gives_the_posts_outputs_and_gradients(name, kw, dtype):
    torch.manual_seed(0)
    model = create_model(name, dropout=0.0, **kw).eval()
    reference = posts_order(model)
    # negative-heavy inputs: many 2×2 windows are all ≤ 0, where the two orders could differ
    x = torch.randn(8, 1, 28, 28) - 0.5
    grads = []
    for net in (model, reference):
        net.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            out = net(x)
        out.float().square().sum().backward()
        grads.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    (out_a, g_a), (out_b, g_b) = grads
    assert torch.equal(out_a, out_b)
    assert all(torch.equal(a, b) for a, b in zip(g_a, g_b))


def test_state_dict_keys_are_the_posts_layer_indices():
    keys = set(create_model("tf_cnn_mnist").state_dict())
    assert {"features.0.weight", "features.3.weight", "classifier.1.weight"} <= keys
    keys = set(create_model("keras_convnet_mnist").state_dict())
    assert {"features.0.weight", "features.2.weight"} <= keys
