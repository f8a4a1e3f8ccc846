"""Rank statistics shared by the reward checks and the oracle reward (:mod:`genrl.evaluation.reward_check`,
:mod:`genrl.behavior.oracle`).

Usage::

    spearman(signal, true_reward)             # rank correlation, ties averaged
    top_fraction_score(signal, true_reward)   # 1 = the signal's top 10 % are the truly best, 0 = random
"""

from __future__ import annotations

import numpy as np


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks ``0 .. n-1`` of ``x [n]`` (float64), ties given their average rank."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, weights=ranks) / counts)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of ``a, b [n]``; ``nan`` if either is constant or ``n < 2``."""
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def top_fraction_score(signal: np.ndarray, true: np.ndarray, fraction: float = 0.1) -> float:
    """``(true[top by signal].mean() - true.mean()) / (true[top by true].mean() - true.mean())`` over the top
    ``fraction`` of ``n`` windows (at least one): 1 = the signal picks the best windows, 0 = no better than random,
    negative = worse. ``nan`` when the true reward is constant."""
    k = max(1, int(round(fraction * len(true))))
    base = true.mean()
    best = np.sort(true)[-k:].mean() - base
    picked = true[np.argsort(signal, kind="mergesort")[-k:]].mean() - base
    return float(picked / best) if best > 0 else float("nan")


__all__ = ["average_ranks", "spearman", "top_fraction_score"]
