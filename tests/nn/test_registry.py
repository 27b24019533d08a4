import pytest
import torch

from mlrepro.errors import ConfigError
from mlrepro.nn import create_model, list_models, register_model

INPUTS = {
    "mlp_mnist": (2, 1, 28, 28),
    "wrn_10_2_gray": (2, 1, 28, 28),
    "tf_cnn_mnist": (2, 1, 28, 28),
    "keras_convnet_mnist": (2, 1, 28, 28),
    "capsnet_mnist": (2, 1, 28, 28),
    "capsnet_multimnist": (2, 1, 36, 36),
}
CIFAR = (2, 3, 32, 32)  # every other model takes CIFAR-sized images
# Parameters the class scores do not reach: CapsNet's decoder learns from its reconstruction loss
# (tests/nn/test_capsnet.py checks that those gradients arrive).
NOT_FROM_SCORES = {"capsnet_mnist": "decoder.", "capsnet_multimnist": "decoder."}


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_runs_forward_and_backward(name):
    torch.manual_seed(0)
    model = create_model(name)
    x = torch.rand(*INPUTS.get(name, CIFAR))
    out = model(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    skip = NOT_FROM_SCORES.get(name)
    # Frozen parameters (fast_cifar's whitening layer) get no gradient by design.
    grads = [
        p.grad
        for n, p in model.named_parameters()
        if p.requires_grad and not (skip and n.startswith(skip))
    ]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_unknown_model_lists_valid_names_and_duplicates_are_refused():
    with pytest.raises(ConfigError, match="unknown model 'resnet9000'; valid: .*mlp_mnist"):
        create_model("resnet9000")

    def mlp_mnist():
        return None

    with pytest.raises(ValueError, match="'mlp_mnist' is registered twice"):
        register_model(mlp_mnist)
