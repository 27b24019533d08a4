import pytest
import torch

from mlrepro.nn import create_model
from mlrepro.nn.capsnet import (
    CapsNet,
    DigitCaps,
    capsnet_loss,
    margin_loss,
    route,
    squash,
    top_k_match,
)


def test_squash_keeps_direction_and_maps_lengths_into_0_1():
    torch.manual_seed(0)
    # Lengths up to ~400: beyond ~4,000, ‖s‖²/(1 + ‖s‖²) rounds to 1.0 in float32.
    s = torch.randn(1000, 16) * torch.logspace(-4, 2, 1000)[:, None]
    s[0] = 0
    v = squash(s)
    n = v.norm(dim=-1)
    assert torch.isfinite(v).all() and n[0] == 0
    assert (n >= 0).all() and (n < 1).all()
    cos = torch.nn.functional.cosine_similarity(v[1:], s[1:], dim=-1)
    assert torch.allclose(cos, torch.ones_like(cos), atol=1e-5)
    sq = s[1:].pow(2).sum(-1)
    assert torch.allclose(n[1:], sq / (1 + sq) / sq.sqrt() * sq.sqrt(), rtol=1e-4)  # Eq. 1's length


def test_coupling_sums_to_one_over_parents_and_one_iteration_is_uniform():
    torch.manual_seed(0)
    u_hat = torch.randn(3, 10, 50, 16)  # (B, J, I, D)
    _, c = route(u_hat, 3)
    assert torch.allclose(c.sum(1), torch.ones(3, 50), atol=1e-6)
    assert not torch.allclose(c, torch.full_like(c, 0.1))  # routing moved the coupling
    v1, c1 = route(u_hat, 1)
    assert torch.equal(c1, torch.full_like(c1, 0.1))
    assert torch.allclose(v1, squash(u_hat.sum(2) / 10), atol=1e-6)


def test_agreement_raises_the_coupling_of_the_agreeing_parent():
    torch.manual_seed(0)
    u_hat = torch.randn(1, 4, 30, 8) * 0.3
    # every child agrees on parent 2
    u_hat[0, 2] = torch.tensor([1.0] * 8) + 0.05 * torch.randn(30, 8)
    couplings = [route(u_hat, r)[1][0, 2].mean().item() for r in (1, 2, 3, 5)]
    assert couplings[0] == pytest.approx(0.25)
    assert couplings[1] > couplings[0] and couplings[2] > couplings[1] and couplings[3] > 0.9
    v, _ = route(u_hat, 3)
    assert v[0].norm(dim=-1).argmax() == 2


def loop_reference(u: torch.Tensor, W: torch.Tensor, iterations: int) -> torch.Tensor:
    """Procedure 1 written literally: one child i, parent j, image n at a time (slow, for checking).

    u: (I, B, K) child capsules; W: (I, K, J*D) as DigitCaps stores it. Routing logits are constants
    of the backward pass (detached), like the fast path.
    """
    I, B, _ = u.shape  # noqa: E741 (I: child capsules, as in the shape comments)
    J, D = 4, W.shape[2] // 4
    out = []
    for n in range(B):
        u_hat = [[W[i, :, j * D : (j + 1) * D].T @ u[i, n] for j in range(J)] for i in range(I)]
        b = [[torch.zeros(()) for _ in range(J)] for _ in range(I)]
        for _ in range(iterations):
            c = [torch.softmax(torch.stack(b[i]).detach(), 0) for i in range(I)]
            s = [sum(c[i][j] * u_hat[i][j] for i in range(I)) for j in range(J)]
            v = [squash(s[j]) for j in range(J)]
            for i in range(I):
                for j in range(J):
                    b[i][j] = b[i][j] + (u_hat[i][j] @ v[j]).detach()
        out.append(torch.stack(v))
    return torch.stack(out)  # (B, J, D)


@pytest.mark.parametrize("iterations", [1, 3])
def test_fast_digit_caps_matches_a_loop_by_loop_reference_in_values_and_gradients(iterations):
    torch.manual_seed(0)
    layer = DigitCaps(in_caps=12, in_dim=8, out_caps=4, out_dim=6, iterations=iterations)
    with torch.no_grad():
        layer.weight.normal_(0, 0.5)
    u = (torch.randn(12, 3, 8) * 0.5).requires_grad_()
    g = torch.randn(3, 4, 6)
    grads = []
    for fn in (
        layer,
        lambda x: loop_reference(x, layer.weight, iterations),
        lambda x: route(layer.predictions(x), iterations)[0],
    ):
        v = fn(u)
        (v * g).sum().backward()
        grads.append((v.detach(), u.grad.clone(), layer.weight.grad.clone()))
        u.grad, layer.weight.grad = None, None
    for got in grads[::2]:  # the fused layer and the plain-autograd route, against the loops
        for a, b in zip(got, grads[1]):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_undetached_routing_has_the_same_forward_but_more_gradient():
    torch.manual_seed(0)
    layer = DigitCaps(in_caps=20, out_caps=4, out_dim=6, detach_routing=False)
    u = (torch.randn(20, 2, 8)).requires_grad_()
    v = layer(u)
    layer.detach_routing = True
    assert torch.allclose(v, layer(u), atol=1e-6)
    (g_full,) = torch.autograd.grad(v.sum(), u)
    (g_detached,) = torch.autograd.grad(layer(u).sum(), u)
    assert not torch.allclose(g_full, g_detached)


def test_capsnet_has_the_papers_size_and_scores_are_capsule_lengths():
    torch.manual_seed(0)
    model = create_model("capsnet_mnist")
    assert sum(p.numel() for p in model.parameters()) == 8_215_568  # paper: ≈ 8.2M with the decoder
    assert model.digits.weight.shape == (1152, 8, 160)
    x = torch.rand(4, 1, 28, 28)
    scores = model(x)
    assert scores.shape == (4, 10) and (scores >= 0).all() and (scores < 1).all()
    assert torch.allclose(scores, model.capsules(x).norm(dim=-1), atol=1e-6)
    assert create_model("capsnet_multimnist")(torch.rand(2, 1, 36, 36)).shape == (2, 10)
    with pytest.raises(ValueError, match="routing_iterations must be >= 1"):
        CapsNet(routing_iterations=0)


def test_margin_loss_matches_eq_4():
    lengths = torch.tensor([[0.95, 0.3, 0.05], [0.5, 0.2, 0.8]])
    labels = torch.tensor([0, 2])
    want0 = 0.0 + 0.5 * 0.2**2 + 0.0
    want1 = 0.5 * 0.4**2 + 0.5 * 0.1**2 + 0.1**2
    assert margin_loss(lengths, labels).item() == pytest.approx((want0 + want1) / 2)
    # Two digits per image: both present classes get the m+ term.
    two = margin_loss(lengths, torch.tensor([[0, 1], [1, 2]])).item()
    assert two == pytest.approx(((0.6**2) + 0.0 + (0.5 * 0.4**2 + 0.7**2 + 0.1**2)) / 2)


def test_reconstruction_uses_only_the_chosen_capsule_and_the_loss_trains_the_decoder():
    torch.manual_seed(0)
    model = CapsNet()
    v = torch.randn(2, 10, 16) * 0.3
    labels = torch.tensor([3, 7])
    r = model.reconstruct(v, labels)
    assert r.shape == (2, 1, 28, 28) and (r > 0).all() and (r < 1).all()
    v2 = v.clone()
    v2[:, [0, 1, 2, 4, 5, 6, 8, 9]] = torch.randn(2, 8, 16)
    assert torch.equal(model.reconstruct(v2, labels), r)
    assert not torch.equal(model.reconstruct(v, torch.tensor([4, 7])), r)
    longest = v.norm(dim=-1).argmax(1)
    # test time: predicted class
    assert torch.equal(model.reconstruct(v), model.reconstruct(v, longest))
    assert model.reconstruct(v, torch.tensor([[3, 4], [7, 1]])).shape == (2, 2, 1, 28, 28)

    x = torch.rand(2, 1, 28, 28)
    loss, lengths = capsnet_loss(model, x, labels)
    margin_only, _ = capsnet_loss(model, x, labels, recon_weight=0.0)
    assert loss > margin_only and torch.allclose(lengths, model(x), atol=1e-6)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_top_k_match_needs_both_digits():
    lengths = torch.tensor([[0.9, 0.8, 0.1], [0.9, 0.1, 0.8], [0.1, 0.9, 0.8]])
    labels = torch.tensor([[1, 0], [0, 1], [2, 1]])
    assert top_k_match(lengths, labels).item() == pytest.approx(2 / 3)
    assert top_k_match(lengths, torch.tensor([1, 0, 1])).item() == pytest.approx(2 / 3)  # top-1


def test_gradients_reach_the_input_after_an_inference_mode_pass():
    torch.manual_seed(0)
    model = CapsNet().eval()
    x = torch.rand(2, 1, 28, 28)
    with torch.inference_mode():
        want = model(x)
    x.requires_grad_()
    scores = model(x)  # an attack's forward after evaluation
    assert torch.allclose(scores, want, atol=1e-6)
    scores[:, 3].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_caps_init_std_sets_the_scale_of_the_digit_capsule_weights():
    torch.manual_seed(0)
    small = create_model("capsnet_mnist").digits.weight
    wide = create_model("capsnet_mnist", caps_init_std=0.05).digits.weight
    assert small.std().item() == pytest.approx(0.01, rel=0.01)
    assert wide.std().item() == pytest.approx(0.05, rel=0.01)
