"""Attack statistics, robustness curves, figures and the adversarial-training step."""

import pytest
import torch
from torch import nn

from mlrepro.attacks import (
    AdversarialLearner,
    attack_stats,
    evaluate_attack,
    fgsm_rs_attack,
    make_attack,
    pick_examples,
    plot_examples,
    plot_robustness,
    robustness_curve,
)


def trained_linear(seed=0):
    """A linear classifier fitted to 3 separable blobs of 'images' (so attacks have work to do)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(3, 1, 4, 4, generator=g) * 0.6 + 0.2
    y = torch.randint(0, 3, (300,), generator=g)
    x = (centres[y] + 0.05 * torch.randn(300, 1, 4, 4, generator=g)).clamp(0, 1)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), 0.05)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval(), x, y


def test_stats_at_eps_zero_are_the_clean_numbers_and_grow_with_eps():
    model, x, y = trained_linear()
    stats, _ = evaluate_attack(model, x, y, make_attack("fgsm", 0.0), batch_size=64)
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
    assert clean > 0.95
    assert stats["clean_accuracy"] == stats["adversarial_accuracy"] == pytest.approx(clean)
    assert stats["attack_success_rate"] == 0 and stats["mean_linf"] == stats["mean_l2"] == 0
    curve = robustness_curve(model, x, y, [0, 0.1, 0.2, 0.4], "fgsm", batch_size=64)
    assert curve[0] == pytest.approx(clean)
    assert curve[-1] < curve[0] - 0.2  # FGSM at ε = 0.4 breaks a linear model on [0, 1] inputs
    strong, _ = evaluate_attack(model, x, y, make_attack("pgd", 0.2, steps=10), batch_size=64)
    assert strong["adversarial_accuracy"] <= curve[2] + 1e-6  # PGD at least as strong as FGSM
    assert strong["mean_linf"] <= 0.2 + 1e-6 and strong["mean_linf"] > 0.1
    # success rate = share of the correctly classified inputs the attack turns wrong
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    assert strong["attack_success_rate"] == pytest.approx(
        1 - strong["adversarial_accuracy"] / correct.float().mean().item(), abs=1e-6
    )


def test_targeted_success_rate_counts_inputs_moved_to_the_target():
    model, x, y = trained_linear()
    target = torch.full_like(y, 2)
    stats, adv = evaluate_attack(
        model, x, y, make_attack("pgd", 0.5, steps=20, targeted=True), target=target
    )
    with torch.no_grad():
        pred = model(adv).argmax(1)
    eligible = y != 2
    assert stats["attack_success_rate"] == pytest.approx(
        (pred[eligible] == 2).float().mean().item()
    )
    assert stats["attack_success_rate"] > 0.5
    assert attack_stats(model, x, y, x)["attack_success_rate"] == 0


def test_figures_are_written(tmp_path):
    model, x, y = trained_linear()
    _, adv = evaluate_attack(model, x, y, make_attack("fgsm", 0.3))
    plot_examples(model, x, adv, tmp_path / "grid.png", n=3, title="t")
    plot_robustness({"a": [1.0, 0.5], "b": [1.0, 0.9]}, [0, 0.1], tmp_path / "curve.png")
    assert (tmp_path / "grid.png").stat().st_size > 1000
    assert (tmp_path / "curve.png").stat().st_size > 1000


@pytest.mark.parametrize("scores", ["logits", "lengths"])
def test_example_titles_show_softmax_or_the_score_itself(monkeypatch, tmp_path, scores):
    import mlrepro.plotting

    figs = []
    monkeypatch.setattr(mlrepro.plotting, "save_figure", lambda fig, path: figs.append(fig))
    model, x, _ = trained_linear()
    if scores == "lengths":
        model = nn.Sequential(model, nn.Sigmoid())  # scores in (0, 1), not summing to 1
    # nothing changed: x[0]
    plot_examples(model, x, x.clone(), tmp_path / "g.png", n=1, scores=scores)
    title = figs[0].axes[0].get_title()
    with torch.no_grad():
        out = model(x[:1])[0]
    expected = (
        f"{100 * out.softmax(0).max():.0f} %" if scores == "logits" else f"length {out.max():.2f}"
    )
    assert expected in title


def test_adversarial_learner_trains_on_attacked_inputs():
    model, x, y = trained_linear()
    model.train()
    seen = []

    def attack(m, xb, yb):
        out = fgsm_rs_attack(0.1)(m, xb, yb)
        seen.append((xb, out))
        return out

    batches = [(x[i : i + 100], y[i : i + 100]) for i in range(0, 300, 100)]
    opt = torch.optim.SGD(model.parameters(), 0.1)
    learner = AdversarialLearner(
        model, opt, nn.CrossEntropyLoss(), attack=attack, metrics=["accuracy"]
    )
    before = [p.detach().clone() for p in model.parameters()]
    learner.fit(batches, 1)
    assert len(seen) == 3 and model.training
    for xb, adv in seen:
        assert 0 < (adv - xb).abs().max() <= 0.1 + 1e-6  # the random start + step moved them
    # The update is the gradient at the adversarial batch, not at the clean one.
    torch.manual_seed(0)
    model2 = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with torch.no_grad():
        for p, b in zip(model2.parameters(), before):
            p.copy_(b)
    opt2 = torch.optim.SGD(model2.parameters(), 0.1)
    for (_, adv), (_, yb) in zip(seen, batches):
        opt2.zero_grad()
        nn.functional.cross_entropy(model2(adv), yb).backward()
        opt2.step()
    for p, q in zip(model.parameters(), model2.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_the_example_grid_shows_what_the_attack_broke_not_earlier_mistakes():
    y = torch.tensor([0, 1, 2, 3, 4])
    clean = torch.tensor([9, 1, 2, 3, 4])  # input 0 was already wrong
    adv = torch.tensor([8, 1, 7, 3, 6])  # the attack broke inputs 2 and 4
    assert pick_examples(clean, adv, y, 3) == [2, 4, 0]
    assert pick_examples(clean, adv, None, 3) == [0, 2, 4]  # without labels: changed predictions
