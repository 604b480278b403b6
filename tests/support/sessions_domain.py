"""Builders for the sessions domain's unit tests: a pair, a clock, slots."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from libs.events.contexts.enrollment import Actor
from libs.events.contexts.sessions import Member, SessionFormat
from services.sessions.domain.session import Session
from services.sessions.domain.values import Busy, Pair, PairStatus, Slot

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ACTOR = Actor(subject="user-1")
THEMES = frozenset({"data_ai", "cybersecurity", "social_media"})


def make_pair(status: PairStatus = PairStatus.FORMED, **overrides: Any) -> Pair:
    values: dict[str, Any] = {
        "pair_id": uuid.uuid4(),
        "organisation": "org-a",
        "programme_id": uuid.uuid4(),
        "wave_id": uuid.uuid4(),
        "country": "FR",
        "mentee_id": uuid.uuid4(),
        "mentor_id": uuid.uuid4(),
        "mentor_country": "FR",
        "status": status,
    }
    return Pair(**{**values, **overrides})


def in_hours(hours: float, minutes: int = 60) -> Slot:
    return Slot(NOW + timedelta(hours=hours), minutes)


def scheduled(
    pair: Pair | None = None,
    slot: Slot | None = None,
    *,
    topics: tuple[str, ...] = (),
    busy: tuple[Busy, ...] = (),
    themes: frozenset[str] | None = THEMES,
) -> Session:
    return Session.schedule(
        session_id=uuid.uuid4(),
        pair=pair or make_pair(),
        by=Member.MENTEE,
        slot=slot or in_hours(48),
        session_format=SessionFormat.REMOTE,
        planned_topics=list(topics),
        themes=themes,
        busy=busy,
        now=NOW,
        actor=ACTOR,
    )
