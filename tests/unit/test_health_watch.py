"""Which changes of a pair's health the daily watch records (services/insights/health/watch.py)."""

from __future__ import annotations

import pytest

from services.insights.health.rules import Status
from services.insights.health.watch import turned_worse


@pytest.mark.parametrize(
    ("previous", "current", "recorded"),
    [
        (Status.HEALTHY, Status.AT_RISK, True),
        (Status.HEALTHY, Status.DORMANT, True),
        (Status.AT_RISK, Status.DORMANT, True),
        (Status.AT_RISK, Status.AT_RISK, False),  # still at risk: said already
        (Status.DORMANT, Status.AT_RISK, False),  # better, though not healthy
        (Status.DORMANT, Status.DORMANT, False),
        (Status.AT_RISK, Status.HEALTHY, False),
        (Status.HEALTHY, Status.ENDED, False),  # an ended pair is nobody's worry
        (Status.HEALTHY, Status.HEALTHY, False),
    ],
)
def test_only_a_change_for_the_worse_into_needing_attention_is_recorded(previous, current, recorded) -> None:
    assert turned_worse(previous, current) is recorded
