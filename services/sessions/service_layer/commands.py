"""What callers ask the sessions service to do, already shaped and typed (the
API checked formats; the domain checks rules). ``expected_version`` comes
from ``If-Match``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from libs.events.contexts.sessions import Member, SessionFormat
from services.sessions.domain.values import SessionRules


@dataclass(frozen=True)
class Schedule:
    pair_id: UUID
    starts_at: datetime
    duration_minutes: int
    session_format: SessionFormat
    planned_topics: list[str]


@dataclass(frozen=True)
class Move:
    session_id: UUID
    starts_at: datetime
    duration_minutes: int | None  # None: keep the duration
    expected_version: int | None = None


@dataclass(frozen=True)
class Cancel:
    session_id: UUID
    reason: str
    expected_version: int | None = None


@dataclass(frozen=True)
class Hold:
    session_id: UUID
    actual_minutes: int
    preparation_minutes: int
    topics_covered: list[str]
    note: str | None
    expected_version: int | None = None


@dataclass(frozen=True)
class MarkNoShow:
    session_id: UUID
    absent: Member
    expected_version: int | None = None


@dataclass(frozen=True)
class RecordCheckIn:
    pair_id: UUID
    mood: int
    blockers: str | None
    next_step: str | None


@dataclass(frozen=True)
class SetRules:
    programme_id: UUID
    rules: SessionRules


@dataclass(frozen=True)
class RecordOutcomes:
    """Many sessions' outcomes (held or a no-show) in one all-or-nothing call."""

    outcomes: list[Hold | MarkNoShow]
