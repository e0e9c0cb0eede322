"""Bootstrap intervals over images for the audit's figures.

An AUC on 100 non-members moves by several hundredths from sampling alone; without an interval a reader
cannot tell a leak from noise. Each figure is recomputed on ``resamples`` draws with replacement of the
images it was measured on (members and non-members drawn separately, so each draw keeps both sides' sizes),
and the 2.5th and 97.5th percentiles of the draws are its 95% interval. The models are not refitted: the
interval is over the images measured, not over training or attack randomness (``bench --seeds`` gives the
spread over unlearning seeds).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

RESAMPLES = 1000


def _percentiles(draws: np.ndarray) -> list[float]:
    low, high = np.percentile(draws, [2.5, 97.5])
    return [float(low), float(high)]


def mean_interval(values: np.ndarray, *, scale: float = 100.0, seed: int = 0,
                  resamples: int = RESAMPLES) -> list[float] | None:
    """95% interval of ``scale`` x the mean of ``values`` (an accuracy from 0/1 correctness)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return None
    rng = np.random.default_rng(seed)
    rows = rng.integers(len(values), size=(resamples, len(values)))
    return _percentiles(values[rows].mean(1) * scale)


def auc_of(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """ROC AUC of scores (members high), by ranks: the chance a member outscores a non-member, ties halved."""
    scores = np.concatenate([members, nonmembers])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    # average ranks over ties
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]
    n, m = len(members), len(nonmembers)
    return float((ranks[:n].sum() - n * (n + 1) / 2) / (n * m))


def tpr_at(members: np.ndarray, nonmembers: np.ndarray, fpr: float) -> float:
    """The largest fraction of members above a threshold that at most ``fpr`` of the non-members exceed."""
    allowed = int(np.floor(fpr * len(nonmembers)))
    ranked = np.sort(nonmembers)[::-1]
    threshold = ranked[allowed] if allowed < len(ranked) else -np.inf
    return float((members > threshold).mean())


def two_sample_interval(statistic: Callable[[np.ndarray, np.ndarray], float], members: np.ndarray,
                        nonmembers: np.ndarray, *, seed: int = 0, resamples: int = RESAMPLES) -> list[float] | None:
    """95% interval of ``statistic(members, nonmembers)``, each side resampled with replacement."""
    members, nonmembers = np.asarray(members, dtype=float), np.asarray(nonmembers, dtype=float)
    if len(members) == 0 or len(nonmembers) == 0:
        return None
    rng = np.random.default_rng(seed)
    draws = np.array([statistic(members[rng.integers(len(members), size=len(members))],
                                nonmembers[rng.integers(len(nonmembers), size=len(nonmembers))])
                      for _ in range(resamples)])
    return _percentiles(draws)


def with_interval(value: float, interval: list[float] | None, digits: int) -> str:
    """A figure and, where it has one, its interval: ``0.577 [0.559, 0.595]``."""
    if interval is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


__all__ = ["mean_interval", "two_sample_interval", "auc_of", "tpr_at", "with_interval", "RESAMPLES"]
