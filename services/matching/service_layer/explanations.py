"""Domain score breakdowns -> the event contract's ``CriterionPoints``."""

from __future__ import annotations

from libs.events.contexts.matching import CriterionPoints
from services.matching.domain import Breakdown


def criterion_points(breakdown: Breakdown) -> list[CriterionPoints]:
    """Every criterion with its share of the 100 points, raw value and points."""
    return [
        CriterionPoints(
            criterion=c.criterion.value, weight=c.share, raw=c.raw, points=c.contribution, detail=c.detail
        )
        for c in breakdown.criteria
    ]
