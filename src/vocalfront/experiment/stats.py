"""Statistics of a front-end comparison: per-front-end summaries and paired differences by seed.

A *run table* is a sequence of mappings, one per training run, each with ``frontend`` (name),
``seed`` (int) and metric values (floats; ``None`` or NaN when undefined). A seed changes the
weight initialisation and the example sampling, so two runs with the same seed but different
front-ends saw the same training examples: comparisons pair them by seed. Only complete pairs
(both runs present with finite values) enter a paired difference; seeds that lack a partner are
listed, not silently dropped.

Conventions: standard deviations use ``n - 1`` (sample sd; NaN for fewer than 2 values);
confidence intervals are two-sided t intervals, ``mean ± t_{(1+c)/2, n-1} · sd / √n``;
differences are ``frontend - baseline``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from ..errors import VocalfrontError

WILCOXON_MIN_PAIRS = 6
"""Fewest pairs for which the Wilcoxon signed-rank test is reported (its smallest two-sided exact
p-value with 5 pairs is 0.0625, so fewer pairs could never reach 5 %)."""

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Summary:
    """Mean and sample standard deviation of ``n`` finite values (NaN where undefined)."""

    n: int
    mean: float
    sd: float


@dataclass(frozen=True)
class PairedDifference:
    """``frontend - baseline`` in ``metric``, paired by seed.

    Attributes:
        seeds: seeds with finite values for both front-ends, increasing.
        unpaired: seeds present (with a finite value) for only one of the two.
        differences: per paired seed, in the order of ``seeds``.
        mean, sd: of the differences (sd with ``n - 1``).
        ci_low, ci_high: t confidence interval of the mean difference at ``confidence``.
        t_p: two-sided p-value of the paired t-test (``scipy.stats.ttest_rel``).
        wilcoxon_p: two-sided p-value of the Wilcoxon signed-rank test
            (``scipy.stats.wilcoxon``), ``None`` for fewer than :data:`WILCOXON_MIN_PAIRS` pairs.
    """

    metric: str
    frontend: str
    baseline: str
    seeds: tuple[int, ...]
    unpaired: tuple[int, ...]
    differences: tuple[float, ...]
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    confidence: float
    t_p: float
    wilcoxon_p: float | None

    @property
    def n(self) -> int:
        """Number of complete pairs."""
        return len(self.seeds)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def summarize(values: Sequence[float | None]) -> Summary:
    """Mean and sample sd of the finite entries of ``values`` (``None``/NaN/inf are left out)."""
    kept = np.array([float(v) for v in values if _finite(v)], dtype=np.float64)
    mean = float(kept.mean()) if kept.size else math.nan
    sd = float(kept.std(ddof=1)) if kept.size > 1 else math.nan
    return Summary(int(kept.size), mean, sd)


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided t confidence interval of the mean of ``values``; NaNs for fewer than 2 values."""
    if not 0.0 < confidence < 1.0:
        raise VocalfrontError(f"confidence must lie in (0, 1), got {confidence}")
    summary = summarize(values)
    if summary.n < 2:
        return math.nan, math.nan
    half = float(stats.t.ppf((1 + confidence) / 2, summary.n - 1)) * summary.sd / math.sqrt(summary.n)
    return summary.mean - half, summary.mean + half


def values_by_seed(rows: Sequence[Row], frontend: str, metric: str) -> dict[int, float]:
    """``seed → value`` of ``metric`` for the runs of ``frontend`` (non-finite values left out).

    Two runs of one front-end with the same seed are an error.
    """
    values: dict[int, float] = {}
    seen: set[int] = set()
    for row in rows:
        if row["frontend"] != frontend:
            continue
        seed = int(row["seed"])
        if seed in seen:
            raise VocalfrontError(f"two runs of front-end {frontend!r} with seed {seed}")
        seen.add(seed)
        if _finite(row.get(metric)):
            values[seed] = float(row[metric])
    return values


def summarize_by_frontend(rows: Sequence[Row], metric: str) -> dict[str, Summary]:
    """Per front-end (in order of first appearance) the :class:`Summary` of ``metric``."""
    names = dict.fromkeys(row["frontend"] for row in rows)
    return {name: summarize(list(values_by_seed(rows, name, metric).values())) for name in names}


def paired_difference(rows: Sequence[Row], frontend: str, baseline: str, metric: str,
                      confidence: float = 0.95) -> PairedDifference:
    """``frontend - baseline`` in ``metric`` over the seeds both have (see :class:`PairedDifference`).

    With fewer than 2 pairs the sd, interval and t-test p-value are NaN.
    """
    ours, theirs = values_by_seed(rows, frontend, metric), values_by_seed(rows, baseline, metric)
    seeds = tuple(sorted(set(ours) & set(theirs)))
    unpaired = tuple(sorted(set(ours) ^ set(theirs)))
    a = np.array([ours[s] for s in seeds], dtype=np.float64)
    b = np.array([theirs[s] for s in seeds], dtype=np.float64)
    differences = a - b
    summary = summarize(list(differences))
    low, high = t_interval(list(differences), confidence)
    return PairedDifference(metric, frontend, baseline, seeds, unpaired,
                            tuple(float(d) for d in differences), summary.mean, summary.sd, low, high,
                            confidence, _t_test_p(a, b), _wilcoxon_p(differences))


def _t_test_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided paired t-test p-value; NaN for fewer than 2 pairs."""
    if a.size < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # zero variance: scipy returns 0 or NaN
        return float(stats.ttest_rel(a, b).pvalue)


def _wilcoxon_p(differences: np.ndarray) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value, ``None`` below :data:`WILCOXON_MIN_PAIRS` pairs."""
    if differences.size < WILCOXON_MIN_PAIRS:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ties and zeros: scipy's normal approximation
        warnings.simplefilter("ignore", RuntimeWarning)  # all zero: scipy divides 0 by 0, gives NaN
        return float(stats.wilcoxon(differences).pvalue)
