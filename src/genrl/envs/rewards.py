"""Short names for dm_control's ``tolerance`` reward shaping (as used by the official ``envs/custom_dmc_tasks/*.py``).

Notation used in the reward docstrings of the domain modules:

* ``G(x >= a, m)`` -> :func:`above` (gaussian sigmoid, value 0.1 at one margin),
* ``G(x <= a, m)`` -> :func:`below`,
* ``L(x >= a, m, v)`` -> :func:`above` with ``sigmoid="linear", value_at_margin=v``.

A margin of 0 gives a hard indicator. All functions return a Python ``float`` in [0, 1].

These are scalar re-statements of ``dm_control.utils.rewards.tolerance`` for the two sigmoids GenRL uses
(``gaussian`` and ``linear``): every environment step evaluates the rewards of all tasks of its domain, and the
array version costs ~20 us per call. ``tests/test_rewards.py`` checks them against dm_control's function.
"""

from __future__ import annotations

import math


def _sigmoid(d: float, sigmoid: str, value_at_margin: float) -> float:
    """Value at normalised distance ``d >= 0`` outside the bounds (``dm_control`` ``_sigmoids``)."""
    if sigmoid == "gaussian":
        if not 0.0 < value_at_margin < 1.0:
            raise ValueError(f"gaussian value_at_margin must be in (0, 1), got {value_at_margin}")
        scale = math.sqrt(-2.0 * math.log(value_at_margin))
        return math.exp(-0.5 * (d * scale) ** 2)
    if sigmoid == "linear":
        if not 0.0 <= value_at_margin < 1.0:
            raise ValueError(f"linear value_at_margin must be in [0, 1), got {value_at_margin}")
        scaled = d * (1.0 - value_at_margin)
        return 1.0 - scaled if abs(scaled) < 1.0 else 0.0
    raise ValueError(f"unsupported sigmoid {sigmoid!r}; expected 'gaussian' or 'linear'")


def above(x: float, bound: float, margin: float, sigmoid: str = "gaussian", value_at_margin: float = 0.1) -> float:
    """1 when ``x >= bound``; decays over ``margin`` below it (``tolerance(x, (bound, inf), margin)``)."""
    x = float(x)
    if x >= bound:
        return 1.0
    if margin == 0:
        return 0.0
    return _sigmoid((bound - x) / margin, sigmoid, value_at_margin)


def below(x: float, bound: float, margin: float, sigmoid: str = "gaussian", value_at_margin: float = 0.1) -> float:
    """1 when ``x <= bound``; decays over ``margin`` above it (``tolerance(x, (-inf, bound), margin)``)."""
    x = float(x)
    if x <= bound:
        return 1.0
    if margin == 0:
        return 0.0
    return _sigmoid((x - bound) / margin, sigmoid, value_at_margin)


def linear_above(x: float, bound: float, margin: float, value_at_margin: float) -> float:
    """``L(x >= bound, margin, value_at_margin)``: linear ramp below ``bound``."""
    return above(x, bound, margin, sigmoid="linear", value_at_margin=value_at_margin)


def linear_below(x: float, bound: float, margin: float, value_at_margin: float) -> float:
    """``L(x <= bound, margin, value_at_margin)``: linear ramp above ``bound``."""
    return below(x, bound, margin, sigmoid="linear", value_at_margin=value_at_margin)
