"""Our scalar tolerance functions equal dm_control's ``rewards.tolerance`` (reference 8.1)."""

import numpy as np
import pytest
from dm_control.utils.rewards import tolerance

from genrl.envs.rewards import above, below, linear_above, linear_below


@pytest.mark.parametrize("sigmoid,value", [("gaussian", 0.1), ("gaussian", 0.5), ("linear", 0.0), ("linear", 0.5)])
@pytest.mark.parametrize("margin", [0.0, 0.15, 1.0, 8.0])
def test_matches_dm_control(sigmoid, value, margin):
    xs = np.random.default_rng(0).uniform(-20, 20, 400)
    for x in xs:
        assert above(x, 1.2, margin, sigmoid, value) == pytest.approx(
            tolerance(x, (1.2, float("inf")), margin, sigmoid, value), abs=1e-12)
        assert below(x, -0.3, margin, sigmoid, value) == pytest.approx(
            tolerance(x, (-float("inf"), -0.3), margin, sigmoid, value), abs=1e-12)


def test_linear_helpers_and_errors():
    assert linear_above(0.5, 1.0, 1.0, 0.5) == pytest.approx(0.75)
    assert linear_below(2.0, 1.0, 1.0, 0.0) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="sigmoid"):
        above(0.0, 1.0, 1.0, sigmoid="cosine")
    with pytest.raises(ValueError, match="value_at_margin"):
        above(0.0, 1.0, 1.0, value_at_margin=0.0)
