"""Stop a training run cleanly on a NaN/Inf, before anything is saved over the last good checkpoint.

Usage (the training loop of :class:`genrl.utils.runtime.Runtime`, which every trainer runs)::

    from genrl.utils.guards import guarded_step

    metrics = guarded_step(lambda: model.train_step(batch, opts), step, "pretrain", out / "checkpoint")

The models raise ``FloatingPointError`` themselves on a non-finite loss before changing any parameter;
:func:`guarded_step` re-words that error (and any non-finite metric the update returns) into one message naming what
was trained, the step and the checkpoint that is kept. Checkpoints are only written after a guarded step returns, so
the last one on disk is always finite.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, NoReturn

import numpy as np

__all__ = ["check_finite", "guarded_step"]


def check_finite(metrics: Mapping[str, Any], step: int, what: str = "training",
                 checkpoint: str | os.PathLike | None = None) -> None:
    """Stop a run on a NaN/Inf metric before it is saved over the last good checkpoint.

    Args:
        metrics: scalars (numbers, numpy values or tensors; arrays are checked element-wise).
        step: the current step, for the message.
        what: what is being trained, for the message (e.g. ``"world model"``).
        checkpoint: the checkpoint folder, named in the message if given.

    Raises:
        FloatingPointError: naming every non-finite metric and its value, the step, and that the last good
            checkpoint is kept.
    """
    bad = []
    for key, value in metrics.items():
        if hasattr(value, "detach"):
            value = value.detach().float().cpu().numpy()
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            continue  # not numeric: nothing to check
        if not np.isfinite(arr).all():
            shown = repr(float(arr.reshape(()))) if arr.size == 1 else f"{(~np.isfinite(arr)).sum()} non-finite values"
            bad.append(f"{key}={shown}")
    if bad:
        _stop(what, step, f"non-finite metric(s) {', '.join(bad)}", checkpoint)


def guarded_step(update: Callable[[], dict], step: int, what: str,
                 checkpoint: str | os.PathLike | None = None) -> dict:
    """Run one training update and stop the run cleanly on a NaN/Inf, before anything is saved over the checkpoint.

    Args:
        update: the update, called with no arguments; returns its metrics. It may itself raise
            ``FloatingPointError`` on a non-finite loss (before changing parameters, as the models here do).
        step, what, checkpoint: as for :func:`check_finite`.

    Returns:
        The update's metrics, all finite.

    Raises:
        FloatingPointError: from the update or :func:`check_finite`, re-worded as ``"{what}: ... at step {step};
            stopping, the last good checkpoint in {checkpoint} is kept (not overwritten)"``.
    """
    try:
        metrics = update()
    except FloatingPointError as err:
        _stop(what, step, str(err), checkpoint)
    check_finite(metrics, step, what, checkpoint)
    return metrics


def _stop(what: str, step: int, detail: str, checkpoint: str | os.PathLike | None) -> NoReturn:
    where = f" in {checkpoint}" if checkpoint is not None else ""
    raise FloatingPointError(f"{what}: {detail} at step {step}; stopping, the last good checkpoint{where} is kept "
                             "(not overwritten)") from None
