"""Cross-check against torchattacks 3.5.1
(test-only: `pip install --no-deps torchattacks==3.5.1`)."""

import pytest
import torch
from torch import nn

from mlrepro.attacks import Normalize, fgsm, pgd
from mlrepro.data import load_dataset
from mlrepro.nn import create_model

torchattacks = pytest.importorskip("torchattacks")


@pytest.fixture(scope="module")
def setup(data_dir):
    """The TF post's CNN (normalisation inside) after a few dozen Adam steps, and 200 test
    digits."""
    torch.manual_seed(0)
    model = nn.Sequential(
        Normalize((0.1307,), (0.3081,)), create_model("tf_cnn_mnist", init="torch")
    )
    train = load_dataset("mnist", "train", data_dir)
    x, y = train.images[:1600].float().div(255), train.labels[:1600]
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for i in range(0, len(x), 50):  # enough for gradients that are not those of a random net
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[i : i + 50]), y[i : i + 50]).backward()
        opt.step()
    test = load_dataset("mnist", "test", data_dir)
    return model.eval(), test.images[:200].float().div(255), test.labels[:200]


def test_fgsm_matches_torchattacks(setup):
    model, x, y = setup
    theirs = torchattacks.FGSM(model, eps=0.1)(x, y)
    assert (fgsm(model, x, y, 0.1) - theirs).abs().max() <= 1e-6


def test_targeted_fgsm_matches_torchattacks(setup):
    model, x, y = setup
    target = (y + 1) % 10
    atk = torchattacks.FGSM(model, eps=0.1)
    atk.set_mode_targeted_by_label(quiet=True)  # the labels passed are the targets
    theirs = atk(x, target)
    assert (fgsm(model, x, target, 0.1, targeted=True) - theirs).abs().max() <= 1e-6


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_without_random_start_matches_torchattacks(setup, norm):
    model, x, y = setup
    if norm == "linf":
        atk = torchattacks.PGD(model, eps=0.1, alpha=0.01, steps=10, random_start=False)
        eps, alpha = 0.1, 0.01
    else:
        atk = torchattacks.PGDL2(model, eps=1.5, alpha=0.2, steps=10, random_start=False)
        eps, alpha = 1.5, 0.2
    theirs = atk(x, y)
    ours = pgd(model, x, y, eps, alpha=alpha, steps=10, norm=norm, random_start=False)
    assert (ours - theirs).abs().max() <= 1e-6
    # Not vacuous: the attack moved the inputs and changed predictions.
    assert (ours - x).abs().max() > 0.05
    with torch.no_grad():
        assert (model(ours).argmax(1) != model(x).argmax(1)).any()
