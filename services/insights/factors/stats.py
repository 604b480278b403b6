"""Effect sizes with 95 % confidence intervals for two groups (scipy).

* A yes/no outcome: the risk difference p1 - p2 with Newcombe's hybrid
  score interval (from Wilson intervals), which stays sensible for small
  groups and proportions near 0 or 1, where the Wald interval does not.
* A numeric outcome: the mean difference with Welch's interval (no equal
  variances assumed), and Hedges' g as the standardised effect.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from scipy import stats

CONFIDENCE = 0.95


def _finite(value: float) -> float | None:
    return round(float(value), 4) if math.isfinite(value) else None


def wilson(successes: int, n: int) -> tuple[float, float]:
    ci = stats.binomtest(successes, n).proportion_ci(CONFIDENCE, method="wilson")
    return ci.low, ci.high


def risk_difference(group: Sequence[bool], rest: Sequence[bool]) -> dict[str, Any]:
    k1, n1, k2, n2 = sum(group), len(group), sum(rest), len(rest)
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = wilson(k1, n1), wilson(k2, n2)
    diff = p1 - p2
    low = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return {
        "measure": "risk_difference",
        "with": {"n": n1, "value": _finite(p1)},
        "without": {"n": n2, "value": _finite(p2)},
        "estimate": _finite(diff),
        "ci95": [_finite(low), _finite(high)],
    }


def mean_difference(group: Sequence[float], rest: Sequence[float]) -> dict[str, Any]:
    n1, n2 = len(group), len(rest)
    m1, m2 = sum(group) / n1, sum(rest) / n2
    if len(set(group)) == 1 and len(set(rest)) == 1:
        low = high = math.nan  # no spread at all: Welch's interval is undefined
    else:
        ci = stats.ttest_ind(group, rest, equal_var=False).confidence_interval(CONFIDENCE)
        low, high = ci.low, ci.high
    return {
        "measure": "mean_difference",
        "with": {"n": n1, "value": _finite(m1)},
        "without": {"n": n2, "value": _finite(m2)},
        "estimate": _finite(m1 - m2),
        "ci95": [_finite(low), _finite(high)],
        "hedges_g": _finite(hedges_g(group, rest)),
    }


def hedges_g(group: Sequence[float], rest: Sequence[float]) -> float:
    n1, n2 = len(group), len(rest)
    m1, m2 = sum(group) / n1, sum(rest) / n2
    v1 = sum((x - m1) ** 2 for x in group) / (n1 - 1)
    v2 = sum((x - m2) ** 2 for x in rest) / (n2 - 1)
    pooled = math.sqrt(((n1 - 1) * v1 + (n2 - 1) * v2) / (n1 + n2 - 2))
    if pooled == 0:
        return math.nan
    correction = 1 - 3 / (4 * (n1 + n2) - 9)
    return (m1 - m2) / pooled * correction
