"""superconvergence's epoch-ratio metric, on synthetic validation curves."""

import pytest

from mlrepro.errors import ConfigError
from mlrepro.experiments import get_experiment
from mlrepro.experiments.superconvergence import epoch_ratio, epochs_to_reach


def test_epochs_to_reach_is_the_first_epoch_at_or_above_the_target():
    curve = [0.5, 0.7, 0.69, 0.8, 0.79, 0.8]
    assert epochs_to_reach(curve, 0.7) == 2  # 1-based; equality counts
    assert epochs_to_reach(curve, 0.8) == 4  # a later dip does not matter
    assert epochs_to_reach(curve, 0.81) is None
    assert epochs_to_reach([], 0.1) is None


def _piecewise_like(n: int = 32) -> list[float]:
    """A plateau at 0.85 with noise, a jump at each drop (30/60/80 %), its final value first met
    at 27."""
    acc = [0.6 + 0.25 * min(1, e / 5) for e in range(1, n + 1)]
    for start, gain in ((10, 0.02), (19, 0.01), (26, 0.005)):
        acc = [a + gain if i >= start else a for i, a in enumerate(acc)]
    acc[27:] = [0.8855, 0.884, 0.8852, 0.8849, 0.885]
    acc[26] = 0.8851
    return acc


def test_ratio_counts_the_same_way_for_both_schedules():
    base = _piecewise_like()
    assert base[-1] == 0.885 and epochs_to_reach(base, 0.885) == 27
    short, longer = [0.7, 0.8, 0.86, 0.88], [0.7, 0.8, 0.85, 0.87, 0.8851, 0.887]
    r = epoch_ratio(base, [short, longer])
    assert r == {
        "target": 0.885,
        "baseline_epochs": 27,
        "onecycle_epochs": 5,
        "epoch_ratio": 5 / 27,
        "onecycle_budget": 6,
        "schedule_ratio": 6 / 32,
    }
    # The shortest run that reaches the target counts, even if a longer one got there earlier.
    assert epoch_ratio(base, [[0.8, 0.885], [0.9]])["onecycle_epochs"] == 2


def test_ratio_is_none_when_no_1cycle_run_reaches_the_target():
    r = epoch_ratio(_piecewise_like(), [[0.8, 0.88], [0.85, 0.8849]])
    assert r["onecycle_epochs"] is None and r["epoch_ratio"] is None and r["baseline_epochs"] == 27
    assert r["schedule_ratio"] is None and r["onecycle_budget"] is None


def test_a_baseline_that_peaked_earlier_counts_from_its_first_visit_of_the_final_value():
    # Overfitting late: the final value was first reached at epoch 3, so the baseline needs 3
    # epochs.
    assert epoch_ratio([0.8, 0.85, 0.87, 0.88, 0.87], [[0.86, 0.87]])[
        "epoch_ratio"
    ] == pytest.approx(2 / 3)


def test_presets_build_and_bad_budgets_are_config_errors():
    exp = get_experiment("superconvergence")
    for name in exp.presets:
        exp.make_config(name)
    with pytest.raises(ConfigError, match="--onecycle-budgets must be >= 1"):
        exp.make_config(None, {"onecycle_budgets": "0,2"})


def test_old_run_folders_spelling_of_the_crop_option_still_loads():
    cfg = get_experiment("superconvergence").make_config(None, {"augment_pad": 2})
    assert cfg.crop_pad == 2
