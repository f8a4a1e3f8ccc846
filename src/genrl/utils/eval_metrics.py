"""The one metric namespace of real-environment evaluations, logged by every trainer that evaluates (``genrl behave``
and ``genrl baseline``) under the ``eval/`` prefix of :class:`~genrl.utils.metrics.MetricsLogger`:

====================  =====================================================================================
``return_mean``       mean episode return (:attr:`genrl.envs.rollout.EvalResult.mean_return`)
``return_std``        population standard deviation of the returns (``std_return``)
``normalized_mean``   mean normalized score (``mean_normalized``; absent for tasks without reference returns)
``normalized_stderr`` its standard error ``std(ddof=1) / sqrt(N)`` (``stderr_normalized``; with it)
``seconds``           wall-clock seconds of the evaluation
====================  =====================================================================================

The evaluation JSON files (``eval.json``, ``evals/step_N.json``, read by ``genrl compare``) keep the
:class:`~genrl.envs.rollout.EvalResult` field names; only the logged metric names are these. Runs logged before the
names were unified (baselines: ``eval/mean_return``, ``eval/std_return``, ``eval/mean_normalized``,
``eval/stderr_normalized``) read back under the new names through :func:`canonical_metric_names`.
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["EVAL_METRICS", "LEGACY_METRIC_NAMES", "eval_metrics", "canonical_metric_names"]

EVAL_METRICS = ("return_mean", "return_std", "normalized_mean", "normalized_stderr", "seconds")

# old logged name -> the name it has now
LEGACY_METRIC_NAMES = {"eval/mean_return": "eval/return_mean", "eval/std_return": "eval/return_std",
                       "eval/mean_normalized": "eval/normalized_mean",
                       "eval/stderr_normalized": "eval/normalized_stderr"}


def eval_metrics(result: Any) -> dict[str, float]:
    """The numbers of an evaluation to log with ``prefix="eval"``, named as :data:`EVAL_METRICS`.

    Args:
        result: a :class:`genrl.envs.rollout.EvalResult` (or anything with its ``mean_return``, ``std_return``,
            ``mean_normalized``, ``stderr_normalized`` and ``seconds`` attributes).

    Returns:
        ``{"return_mean", "return_std", "normalized_mean", "normalized_stderr", "seconds"}`` as floats; the two
        normalized entries only when the task has reference returns (``mean_normalized`` is not None).
    """
    out = {"return_mean": float(result.mean_return), "return_std": float(result.std_return)}
    if result.mean_normalized is not None:
        out["normalized_mean"] = float(result.mean_normalized)
        if result.stderr_normalized is not None:
            out["normalized_stderr"] = float(result.stderr_normalized)
    out["seconds"] = float(result.seconds)
    return out


def canonical_metric_names(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``metrics.jsonl`` row with the old evaluation names (:data:`LEGACY_METRIC_NAMES`) renamed to the current
    ones (a row holding both keeps the current one's value); other keys unchanged."""
    out = dict(row)
    for old, new in LEGACY_METRIC_NAMES.items():
        if old in out:
            value = out.pop(old)
            out.setdefault(new, value)
    return out
