"""The API's request and response bodies.

Requests forbid unknown fields and check formats (ranges, lengths, aware
date-times, theme codes); the domain then checks the rules that need state
(the pair, the programme's themes, the calendars, the clock).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from libs.api.dates import Instant
from libs.api.text import stripped
from libs.events.contexts.enrollment import Actor
from libs.events.contexts.sessions import Member, SessionFormat
from services.sessions.domain.values import (
    MAX_ACTUAL_MINUTES,
    MAX_DURATION_MINUTES,
    MAX_MOOD,
    MAX_PREPARATION_MINUTES,
    MIN_DURATION_MINUTES,
    MIN_MOOD,
    SessionStatus,
)

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
Topics = Annotated[list[Code], Field(max_length=10, description="Theme codes of the programme.")]
Duration = Annotated[int, Field(ge=MIN_DURATION_MINUTES, le=MAX_DURATION_MINUTES, description="Minutes.")]
Text = stripped(2000)


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleIn(Input):
    starts_at: Instant = Field(description="With its offset, e.g. 2026-03-02T09:00:00+01:00.")
    duration_minutes: Duration
    format: SessionFormat
    planned_topics: Topics = []


class MoveIn(Input):
    starts_at: Instant
    duration_minutes: Duration | None = Field(None, description="Omitted: the duration stays.")


class CancelIn(Input):
    reason: Text


class HeldIn(Input):
    actual_minutes: int = Field(ge=1, le=MAX_ACTUAL_MINUTES)
    preparation_minutes: int = Field(0, ge=0, le=MAX_PREPARATION_MINUTES, description="The mentor's preparation.")
    topics_covered: Topics = []
    note: Text | None = None


class NoShowIn(Input):
    absent: Literal[Member.MENTEE, Member.MENTOR]


class HeldOutcomeIn(HeldIn):
    session_id: UUID
    outcome: Literal["held"]


class NoShowOutcomeIn(NoShowIn):
    session_id: UUID
    outcome: Literal["no_show"]


MAX_OUTCOMES = 500


class OutcomesIn(Input):
    outcomes: list[Annotated[HeldOutcomeIn | NoShowOutcomeIn, Field(discriminator="outcome")]] = Field(
        min_length=1, max_length=MAX_OUTCOMES, description="Each session at most once; all recorded, or none."
    )

    @field_validator("outcomes")
    @classmethod
    def _each_session_once(cls, value: list[HeldOutcomeIn | NoShowOutcomeIn]) -> list[HeldOutcomeIn | NoShowOutcomeIn]:
        if len({o.session_id for o in value}) != len(value):
            raise ValueError("each session at most once")
        return value


class CheckInIn(Input):
    mood: int = Field(ge=MIN_MOOD, le=MAX_MOOD, description="How it is going, 1 (badly) to 5 (very well).")
    blockers: Text | None = None
    next_step: Text | None = None


class SessionSettingsIn(Input):
    """A programme's session rules; a field left out takes its default."""

    budget_share_percent: float = Field(5.0, gt=0, le=50, description="Share of working time, in percent.")
    weekly_hours: float = Field(40.0, gt=0, le=80, description="A mentor's working week, in hours.")
    late_cancellation_hours: int = Field(24, ge=0, le=336, description="Less notice than this is a late cancellation.")


# --------------------------------------------------------------------------- responses


class Change(BaseModel):
    at: datetime
    by: Actor


class MoveOut(Change):
    moved_by: Member
    previous_starts_at: datetime
    starts_at: datetime
    duration_minutes: int


class CancellationOut(Change):
    cancelled_by: Member
    reason: str
    notice_hours: float
    late: bool


class HeldOut(Change):
    held_at: datetime
    actual_minutes: int
    preparation_minutes: int
    topics_covered: list[str]
    note: str | None
    sequence_in_pair: int


class NoShowOut(Change):
    absent: Member
    reported_by: Member


class PairFacts(BaseModel):
    pair_id: UUID
    programme_id: UUID
    wave_id: UUID
    country: str
    mentee_id: UUID
    mentor_id: UUID


class SessionOut(PairFacts):
    session_id: UUID
    status: SessionStatus
    starts_at: datetime
    duration_minutes: int
    format: SessionFormat
    planned_topics: list[str]
    scheduled_by: Member
    scheduled: Change
    moves: list[MoveOut]
    cancellation: CancellationOut | None
    held: HeldOut | None
    no_show: NoShowOut | None
    version: int
    updated_at: datetime
    updated_by: Actor


class CheckInOut(PairFacts):
    check_in_id: UUID
    member: Member
    mood: int
    blockers: str | None
    next_step: str | None
    recorded_at: datetime
    recorded_by: Actor


class PairOut(PairFacts):
    mentor_country: str
    status: str
    sessions: dict[str, int] = Field(description="Number of the pair's sessions per status.")


class BudgetOut(BaseModel):
    mentor_id: UUID
    month: str = Field(description="YYYY-MM")
    programme_id: UUID
    country: str = Field(description="The mentor's country.")
    budget_minutes: int
    total_minutes: int
    session_minutes: int
    preparation_minutes: int
    remaining_minutes: int
    entries: int
    over_budget: bool
    exceeded_at: datetime | None
    version: int


class SessionSettingsOut(BaseModel):
    programme_id: UUID
    budget_share_percent: float
    weekly_hours: float
    monthly_budget_minutes: int
    late_cancellation_hours: int
    version: int = Field(description="0: never set, the defaults apply.")
    updated_at: datetime | None
    updated_by: Actor | None = Field(description="null: never set, the defaults apply.")


class OutcomesOut(BaseModel):
    sessions: list[SessionOut] = Field(description="Each session as it now is, in the order of the request.")
