"""The ε schedule hits its knots: hold 1.0, linear decay, then 0.1 (the blog's schedule)."""

import itertools

import pytest

from mlrepro.rl import epsilon


def test_blog_schedule_knots_per_epoch():
    # 20 epochs: ε = 1 for epochs 0-1, linear until epoch 12, then 0.1.
    eps = [epsilon(e / 20) for e in range(20)]
    assert eps[0] == eps[1] == 1.0
    assert eps[2] == pytest.approx(1.0)
    assert eps[7] == pytest.approx(1.0 - 5 / 10 * 0.9)
    assert eps[12] == eps[19] == 0.1
    assert all(a >= b for a, b in itertools.pairwise(eps))


def test_knots_of_a_custom_schedule():
    kw = {"start": 0.5, "end": 0.0, "hold_frac": 0.2, "decay_end_frac": 0.4}
    assert epsilon(0.0, **kw) == 0.5 and epsilon(0.1999, **kw) == 0.5
    assert epsilon(0.3, **kw) == pytest.approx(0.25)
    assert epsilon(0.4, **kw) == 0.0 and epsilon(1.0, **kw) == 0.0


def test_bad_knots_are_refused():
    with pytest.raises(ValueError):
        epsilon(0.5, hold_frac=0.7, decay_end_frac=0.6)
