"""FGSM, BIM and PGD: the maths on models small enough to check by hand, the constraints, the
errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mlrepro.attacks import Normalize, bim, eval_mode, fgsm, make_attack, pgd
from mlrepro.errors import InputError
from mlrepro.nn import create_model, list_models

# The image sizes of the registry's families (MNIST, CIFAR-10, MultiMNIST); each model is given the
# first one it accepts, so a newly registered classifier is attacked without an entry here.
SHAPES = [(1, 28, 28), (3, 32, 32), (1, 36, 36)]


def input_shape(model):
    for shape in SHAPES:
        try:
            with torch.no_grad():
                model.eval()(torch.rand(1, *shape))
            return shape
        except RuntimeError:
            continue
    pytest.fail(f"{type(model).__name__} takes none of the image sizes {SHAPES}")


def linear_model(seed=0, classes=10, shape=(1, 6, 6)):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(int(torch.tensor(shape).prod()), classes))


def batch(n=16, shape=(1, 6, 6), classes=10, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g)


def test_fgsm_on_a_linear_model_is_the_closed_form_step():
    # logits = W x + b, so ∇ₓ CE = Wᵀ (softmax(Wx + b) − onehot(y)) / B: FGSM is computable by hand.
    model = linear_model()
    x, y = batch()
    W, b = model[1].weight.detach(), model[1].bias.detach()
    p = torch.softmax(x.flatten(1) @ W.T + b, 1)
    grad = ((p - F.one_hot(y, 10)) @ W / len(x)).view_as(x)
    want = (x + 0.1 * grad.sign()).clamp(0, 1)
    assert torch.equal(fgsm(model, x, y, 0.1), want)
    # Targeted: a step *down* the target's loss.
    t = (y + 3) % 10
    grad_t = ((p - F.one_hot(t, 10)) @ W / len(x)).view_as(x)
    assert torch.equal(fgsm(model, x, t, 0.1, targeted=True), (x - 0.1 * grad_t.sign()).clamp(0, 1))


def test_unclamped_fgsm_is_the_plain_step_and_leaves_the_unit_box_where_clamped_does_not():
    # The adversarial-examples post's code: x + ε·sign(∇) with no clamp, so pixels at 0 can go
    # to −ε.
    model = linear_model()
    x, y = batch()
    x[:, :, :3] = 0.0  # background pixels, as in MNIST
    x[:, :, 3:] = 1.0
    W, b = model[1].weight.detach(), model[1].bias.detach()
    p = torch.softmax(x.flatten(1) @ W.T + b, 1)
    step = 0.1 * ((p - F.one_hot(y, 10)) @ W / len(x)).view_as(x).sign()
    assert (step != 0).all()
    unclamped = fgsm(model, x, y, 0.1, clamp=False)
    assert torch.equal(unclamped, x + step)
    assert unclamped[x == 0].min() == pytest.approx(-0.1) and unclamped[
        x == 1
    ].max() == pytest.approx(1.1)
    clamped = fgsm(model, x, y, 0.1)
    assert (
        torch.equal(clamped, (x + step).clamp(0, 1)) and clamped.min() == 0 and clamped.max() == 1
    )
    assert torch.equal(fgsm(model, x, y, 0.1, clamp=True), clamped)  # the default clamps


ATTACKS = {
    "fgsm": lambda m, x, y, eps: fgsm(m, x, y, eps),
    "fgsm-targeted": lambda m, x, y, eps: fgsm(m, x, (y + 1) % 10, eps, targeted=True),
    "bim": lambda m, x, y, eps: bim(m, x, y, eps),
    "pgd-linf": lambda m, x, y, eps: pgd(m, x, y, eps, alpha=eps / 3, steps=5),
    "pgd-linf-no-start": lambda m, x, y, eps: pgd(
        m, x, y, eps, alpha=eps / 3, steps=5, random_start=False
    ),
    "pgd-linf-big-steps": lambda m, x, y, eps: pgd(m, x, y, eps, alpha=4 * eps, steps=3),
    "pgd-l2": lambda m, x, y, eps: pgd(m, x, y, 10 * eps, alpha=4 * eps, steps=5, norm="l2"),
}


@pytest.mark.parametrize("name", list(ATTACKS))
@pytest.mark.parametrize("eps", [0.0, 0.03, 0.3])
def test_results_stay_in_the_unit_box_and_the_eps_ball(name, eps):
    model = linear_model()
    x, y = batch(32)
    x[:4] = 0.0  # pixels at the box's edges: the clamp must hold them
    x[4:8] = 1.0
    adv = ATTACKS[name](model, x, y, eps)
    assert adv.shape == x.shape and adv.dtype == x.dtype and not adv.requires_grad
    assert adv.min() >= 0 and adv.max() <= 1
    delta = (adv - x).flatten(1)
    if name == "pgd-l2":
        assert delta.norm(dim=1).max() <= 10 * eps * (1 + 1e-5) + 1e-7
    else:
        assert delta.abs().max() <= eps + 1e-6
    if eps == 0:
        assert torch.equal(adv, x)


def test_attacks_raise_the_loss_and_targeted_attacks_reach_the_target():
    model = linear_model()
    x, y = batch(64)
    with torch.no_grad():
        base = F.cross_entropy(model(x), y)
        assert F.cross_entropy(model(fgsm(model, x, y, 0.05)), y) > base
        pgd_adv = pgd(model, x, y, 0.05, alpha=0.01, steps=10, random_start=False)
        # PGD from the same start maximises the loss at least as well as its first (FGSM-like) step.
        assert F.cross_entropy(model(pgd_adv), y) >= F.cross_entropy(
            model(pgd(model, x, y, 0.05, alpha=0.01, steps=1, random_start=False)), y
        )
    t = torch.full_like(y, 7)
    adv = pgd(model, x, t, 0.5, alpha=0.05, steps=30, targeted=True)
    with torch.no_grad():
        assert (model(adv).argmax(1) == 7).float().mean() > (model(x).argmax(1) == 7).float().mean()
        assert (model(adv).argmax(1) == 7).float().mean() >= 0.9


def test_random_start_follows_the_generator_and_global_seed():
    model = linear_model()
    x, y = batch()
    a = pgd(model, x, y, 0.1, alpha=0.02, steps=2, generator=torch.Generator().manual_seed(5))
    b = pgd(model, x, y, 0.1, alpha=0.02, steps=2, generator=torch.Generator().manual_seed(5))
    c = pgd(model, x, y, 0.1, alpha=0.02, steps=2, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_attacks_run_the_model_in_eval_mode_and_restore_its_mode():
    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(36, 10), nn.Dropout(0.5))

        def forward(self, x):
            seen.append((self.training, self.net[2].training))
            return self.net(x)

    model = Spy().train()
    x, y = batch()
    pgd(model, x, y, 0.1, alpha=0.05, steps=3)
    assert seen == [(False, False)] * 3 and model.training and model.net[2].training
    with eval_mode(model):
        assert not model.training
    assert model.training


def test_attacks_leave_parameters_without_grads_and_trainable():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 10))
    model[1].bias.requires_grad_(False)  # a frozen parameter stays frozen
    x, y = batch()
    seen = []
    model.register_forward_hook(
        lambda m, i, o: seen.append([p.requires_grad for p in m.parameters()])
    )
    for attack in ("fgsm", "pgd"):
        make_attack(attack, 0.1, steps=2)(model, x, y)
    assert seen == [[False, False]] * 3  # ∇ₓ only: no weight-gradient paths recorded
    assert [p.requires_grad for p in model.parameters()] == [True, False]
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", list_models())
def test_every_registered_classifier_can_be_attacked_without_model_specific_code(name):
    torch.manual_seed(0)
    model = create_model(name)
    shape = input_shape(model)
    x, y = batch(2, shape)
    for attack in ("fgsm", "pgd", "pgd-l2"):
        adv = make_attack(attack, 0.05, steps=2)(model, x, y)
        assert adv.shape == x.shape and adv.min() >= 0 and adv.max() <= 1
        assert not torch.equal(adv, x)


def test_normalize_inside_the_model_is_what_the_attack_differentiates_through():
    torch.manual_seed(0)
    net = create_model("mlp_mnist")
    model = nn.Sequential(Normalize((0.1307,), (0.3081,)), net)
    x, y = batch(8, (1, 28, 28))
    adv = fgsm(model, x, y, 0.1)
    # The same attack by hand on the normalised network: the gradient w.r.t. the raw pixels.
    xr = x.clone().requires_grad_(True)
    F.cross_entropy(net((xr - 0.1307) / 0.3081), y).backward()
    assert torch.equal(adv, (x + 0.1 * xr.grad.sign()).clamp(0, 1))


# --- bad input: one clear line each ---
def test_negative_or_nonfinite_eps_is_refused():
    model = linear_model()
    x, y = batch()
    for eps in (-0.1, float("nan"), float("inf")):
        with pytest.raises(InputError, match=r"eps must be a finite number >= 0"):
            fgsm(model, x, y, eps)
    with pytest.raises(InputError, match="eps must be"):
        pgd(model, x, y, -1.0, alpha=0.1)
    with pytest.raises(InputError, match="alpha must be"):
        pgd(model, x, y, 0.1, alpha=-0.1)
    with pytest.raises(InputError, match="steps must be an integer >= 1"):
        pgd(model, x, y, 0.1, alpha=0.1, steps=0)
    with pytest.raises(InputError, match="norm must be 'linf' or 'l2'"):
        pgd(model, x, y, 0.1, alpha=0.1, norm="l1")
    with pytest.raises(InputError, match="unknown attack 'cw'"):
        make_attack("cw", 0.1)


def test_inputs_outside_the_unit_box_name_the_usual_mistake():
    model = linear_model()
    x, y = batch()
    normalised = (x - 0.1307) / 0.3081
    with pytest.raises(
        InputError,
        match=r"inputs must lie in \[0, 1\] \(got min .*put normalisation inside the model",
    ):
        fgsm(model, normalised, y, 0.1)
    with pytest.raises(InputError, match=r"inputs must lie in \[0, 1\]"):
        pgd(model, x * 255, y, 0.1, alpha=0.1)
    with pytest.raises(InputError, match="float tensor"):
        fgsm(model, (x * 255).to(torch.uint8), y, 0.1)
    with pytest.raises(InputError, match=r"labels must be integer class indices of shape \(16,\)"):
        fgsm(model, x, y[:3], 0.1)
    with pytest.raises(InputError, match="labels must be integer"):
        fgsm(model, x, y.float(), 0.1)


def test_a_model_that_does_not_return_logits_is_refused():
    x, y = batch()
    base = linear_model()
    with pytest.raises(InputError, match="model returns probabilities .* drop the final softmax"):
        fgsm(nn.Sequential(base, nn.Softmax(dim=1)), x, y, 0.1)
    with pytest.raises(
        InputError, match="must return a \\(batch, classes\\) tensor of logits, got tuple"
    ):
        fgsm(lambda_model(lambda v: (base(v), v)), x, y, 0.1)
    with pytest.raises(InputError, match=r"got shape \(16,\)"):
        pgd(lambda_model(lambda v: base(v).sum(1)), x, y, 0.1, alpha=0.1)
    # Log-probabilities are logits up to a constant: accepted, and the attack is unchanged.
    logp = nn.Sequential(base, nn.LogSoftmax(dim=1))
    assert torch.allclose(fgsm(logp, x, y, 0.1), fgsm(base, x, y, 0.1))


def lambda_model(fn):
    class Wrapped(nn.Module):
        def forward(self, v):
            return fn(v)

    return Wrapped()
