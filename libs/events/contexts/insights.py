"""Events of the insights context: what insights concludes from the other
contexts' facts. Emitted by ``services/insights`` on topic
``binome.insights.events``.

A pair's health is evaluated once a day on the platform clock
(``services/insights/health/watch.py``); when it gets worse into a status
that needs attention (``at_risk`` or ``dormant``, the statuses of
``services/insights/health/rules.py``), insights records it. Each pair's
changes are one stream of insights' store (``subject`` = ``pair_id``).
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from libs.events.registry import DomainEvent, event

CONTEXT = "insights"


@event(CONTEXT, "PairNeedsAttention", version=1)
class PairNeedsAttention(DomainEvent):
    """The day's evaluation found the pair worse than before, in a status
    that needs attention (healthy -> at_risk or dormant, at_risk -> dormant)."""

    pair_id: UUID
    programme_id: UUID
    wave_id: UUID
    country: str
    mentee_id: UUID
    mentor_id: UUID
    status: str  # at_risk | dormant
    previous_status: str  # healthy | at_risk (what the last evaluation found)
    reasons: list[str]  # the rules' reason codes, newest first (e.g. no_first_session)
    evaluated_on: date  # the day (UTC, platform clock) of the evaluation
    evaluated_at: datetime
