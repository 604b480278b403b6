"""Values of the sessions domain: the pair as sessions knows it, a time slot,
a programme's session rules, and the bounds the rules use."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from libs.events.contexts.sessions import Member

MIN_DURATION_MINUTES = 15
MAX_DURATION_MINUTES = 120
MAX_ACTUAL_MINUTES = 480
MAX_PREPARATION_MINUTES = 480
MIN_MOOD, MAX_MOOD = 1, 5
#: A month of the time budget is 52/12 weeks.
WEEKS_PER_MONTH = 52 / 12


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    HELD = "held"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


class PairStatus(StrEnum):
    FORMED = "formed"
    DISSOLVED = "dissolved"
    COMPLETED = "completed"


@dataclass(frozen=True)
class Pair:
    """A pair as the matching events described it (the pair's home is the
    mentee's wave and country; the mentor's country is named beside it)."""

    pair_id: UUID
    organisation: str
    programme_id: UUID
    wave_id: UUID
    country: str
    mentee_id: UUID
    mentor_id: UUID
    mentor_country: str
    status: PairStatus

    @property
    def people(self) -> tuple[UUID, UUID]:
        return (self.mentee_id, self.mentor_id)

    def facts(self) -> dict[str, Any]:
        """What every event about the pair's activity names (``PairFact``)."""
        names = ("pair_id", "programme_id", "wave_id", "country", "mentee_id", "mentor_id")
        return {name: getattr(self, name) for name in names}

    def member(self, participant_id: str) -> Member | None:
        """Which member ``participant_id`` is in this pair, if any."""
        if participant_id == str(self.mentee_id):
            return Member.MENTEE
        if participant_id == str(self.mentor_id):
            return Member.MENTOR
        return None


@dataclass(frozen=True)
class Slot:
    """A stretch of time: ``[starts_at, starts_at + minutes)``."""

    starts_at: datetime
    minutes: int

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.minutes)

    def overlaps(self, other: Slot) -> bool:
        # Half-open intervals: a session may start when the previous one ends.
        return self.starts_at < other.ends_at and other.starts_at < self.ends_at


@dataclass(frozen=True)
class Busy:
    """A session that occupies one of the people's time."""

    session_id: UUID
    participant_id: UUID
    slot: Slot


@dataclass(frozen=True)
class SessionRules:
    """A programme's session rules (sessions owns them: enrollment's events
    carry the themes, not these)."""

    budget_share_percent: float = 5.0
    weekly_hours: float = 40.0
    late_cancellation_hours: int = 24

    @property
    def monthly_budget_minutes(self) -> int:
        return monthly_budget_minutes(self.budget_share_percent, self.weekly_hours)


DEFAULT_RULES = SessionRules()


def monthly_budget_minutes(share_percent: float, weekly_hours: float) -> int:
    """The minutes a mentor may give per month: a share of the working minutes
    of 52/12 weeks (5 % of 40 h is 520 minutes)."""
    return math.floor(weekly_hours * 60 * share_percent / 100 * WEEKS_PER_MONTH + 1e-9)


def month_of(moment: datetime) -> date:
    """The budget month of a moment: the first day of its UTC calendar month."""
    utc = moment.astimezone(UTC)
    return date(utc.year, utc.month, 1)
