"""fgsm-mnist's blog preset: the post's MLP alone, attacked with and without the clamp to [0, 1]."""

import pytest

from mlrepro.errors import ConfigError
from mlrepro.experiments import fgsm_mnist, get_experiment
from mlrepro.runner import run_experiment


def test_blog_preset_is_the_posts_setup():
    cfg = get_experiment("fgsm-mnist").make_config("blog")
    assert (cfg.mlp_recipe, cfg.cnn, cfg.mlp_epochs, cfg.eps_linf, cfg.batch_size) == (
        "blog",
        False,
        10,
        0.1,
        50,
    )
    assert fgsm_mnist.BLOG_LR == 1e-4  # the author's TF post's Adam


def test_blog_preset_reports_clamped_and_unclamped_fgsm_without_the_cnn(tmp_path, data_dir):
    quick = dict(get_experiment("fgsm-mnist").presets["quick"])
    run_dir, metrics = run_experiment(
        "fgsm-mnist",
        preset="blog",
        overrides={k: v for k, v in quick.items() if k != "cnn_epochs"},
        out=tmp_path,
        device="cpu",
        data_dir=str(data_dir) if data_dir else None,
        verbose=False,
    )
    for key in ("mlp_test_accuracy", "mlp_fgsm_accuracy", "mlp_fgsm_unclamped_accuracy"):
        assert 0 <= metrics[key] <= 1, key
    # Unclamped, the pixels at 0 move too: a larger perturbation than the clamped one.
    assert metrics["mlp_fgsm_unclamped_mean_l2"] > metrics["mlp_fgsm_mean_l2"] > 0
    assert metrics["cnn_fgsm_accuracy"] is None and "cnn_test_accuracy" not in metrics
    plots = {p.name for p in (run_dir.path / "plots").glob("*.png")}
    assert {"robustness.png", "examples_mlp.png", "examples_mlp_unclamped.png"} <= plots
    assert "examples_cnn.png" not in plots


def test_an_unknown_mlp_recipe_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="mlp-recipe expects one of mnist-mlp, blog"):
        run_experiment(
            "fgsm-mnist",
            overrides={"mlp_recipe": "keras"},
            out=tmp_path,
            device="cpu",
            verbose=False,
        )
