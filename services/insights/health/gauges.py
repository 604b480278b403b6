"""The business gauges ``binome_pairs_active`` and ``binome_pairs_at_risk``
(libs/observability/metrics.py), per country, from the pair-health model.

The projection refreshes a country's gauges once per batch of events that
touched its pairs, with the wall clock of that moment. A pair that turns
dormant with no new event therefore shows in the gauge at its country's next
event (the pair-health API always answers as of the request).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from libs.observability import metrics
from services.insights.health.facts import Executor, PairScope, pair_health
from services.insights.health.rules import NEEDS_ATTENTION, Status

SERVICE = "insights"


async def refresh(db: Executor, schema: str, country: str, now: datetime) -> None:
    # Every organisation: the gauges are labelled by country only.
    health = await pair_health(db, schema, PairScope(None, countries=[country]), now)
    active = Counter(h.verdict.status is not Status.ENDED for h in health)[True]
    at_risk = Counter(h.verdict.status in NEEDS_ATTENTION for h in health)[True]
    metrics.PAIRS_ACTIVE.labels(SERVICE, country).set(active)
    metrics.PAIRS_AT_RISK.labels(SERVICE, country).set(at_risk)
