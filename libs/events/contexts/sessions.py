"""Events of the sessions context: a pair's meetings, its check-ins and the
mentors' time budget. Emitted by ``services/sessions`` on topic
``binome.sessions.events``; consumed by evaluation (feedback after each held
session) and insights (pair health, rollout dashboard).

A session is its own stream (``subject`` = ``session_id``)::

    SessionScheduled ─┬─ SessionMoved (any number of times)
                      ├─> SessionHeld
                      ├─> SessionNoShow
                      └─> SessionCancelled

Check-ins are streams of their own (one per check-in); a mentor's time budget
is a stream per mentor and month (``MentorTimeLogged``,
``MentorBudgetExceeded``; ``subject`` = ``budget:<mentor_id>:<YYYY-MM>``); a
programme's session rules are a stream per programme
(``SessionSettingsChanged``, ``subject`` = ``programme_id``).

Conventions, as in the other contexts: ``data`` names the pair, programme,
wave and country (the pair's home: the mentee's wave) so consumers file a fact
without reading another event; ``actor`` says who made the change; free text
someone typed is listed in ``personal_fields``.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from libs.events.contexts.enrollment import Actor
from libs.events.registry import DomainEvent, event

CONTEXT = "sessions"


class SessionFormat(StrEnum):
    IN_PERSON = "in_person"
    REMOTE = "remote"


class Member(StrEnum):
    """Which member of the pair acted (or ``hr`` for the programme team)."""

    MENTEE = "mentee"
    MENTOR = "mentor"
    HR = "hr"


# --------------------------------------------------------------------------- bases


class SessionsEvent(DomainEvent):
    actor: Actor


class PairFact(SessionsEvent):
    """A fact about one pair's activity; free text is sealed with the pair's
    key, owned by both members."""

    personal_key: ClassVar[str] = "pair_id"
    personal_owners: ClassVar[tuple[str, ...]] = ("mentee_id", "mentor_id")

    pair_id: UUID
    programme_id: UUID
    wave_id: UUID
    country: str
    mentee_id: UUID
    mentor_id: UUID


class SessionEvent(PairFact):
    session_id: UUID


# --------------------------------------------------------------------------- sessions


@event(CONTEXT, "SessionScheduled", version=1)
class SessionScheduled(SessionEvent):
    """A member of a formed pair scheduled a meeting."""

    scheduled_by: Member
    starts_at: datetime
    duration_minutes: int  # 15..120
    format: SessionFormat
    planned_topics: list[str]  # theme codes of the programme


@event(CONTEXT, "SessionMoved", version=1)
class SessionMoved(SessionEvent):
    moved_by: Member
    previous_starts_at: datetime
    starts_at: datetime
    duration_minutes: int


@event(CONTEXT, "SessionCancelled", version=1)
class SessionCancelled(SessionEvent):
    """``notice_hours``: how long before the start it was cancelled (negative:
    after the start)."""

    personal_fields = frozenset({"reason"})

    cancelled_by: Member
    reason: str
    notice_hours: float
    late: bool  # less notice than the programme's late-cancellation threshold


@event(CONTEXT, "SessionHeld", version=1)
class SessionHeld(SessionEvent):
    """The meeting took place."""

    personal_fields = frozenset({"note"})

    held_at: datetime
    actual_minutes: int
    preparation_minutes: int  # the mentor's preparation, counted in the time budget
    topics_covered: list[str]
    note: str | None = None
    sequence_in_pair: int  # 1 for the pair's first held session


@event(CONTEXT, "SessionNoShow", version=1)
class SessionNoShow(SessionEvent):
    """A member did not come; ``absent`` says who."""

    absent: Member
    reported_by: Member


# --------------------------------------------------------------------------- check-ins


@event(CONTEXT, "CheckInRecorded", version=1)
class CheckInRecorded(PairFact):
    """A member recorded a progress point."""

    personal_fields = frozenset({"blockers", "next_step"})

    check_in_id: UUID
    member: Member
    mood: int  # how it is going, 1..5
    blockers: str | None = None
    next_step: str | None = None


# --------------------------------------------------------------------------- time budget


class MentorBudgetEvent(SessionsEvent):
    """A mentor's time in one calendar month."""

    mentor_id: UUID
    programme_id: UUID
    country: str
    month: date  # the first day of the month
    budget_minutes: int  # what the programme allows the mentor per month


@event(CONTEXT, "MentorTimeLogged", version=1)
class MentorTimeLogged(MentorBudgetEvent):
    """Minutes of preparation and session time counted for a mentor."""

    pair_id: UUID
    session_id: UUID | None = None
    minutes: int
    total_minutes: int  # the month's total after this entry
    #: How ``minutes`` splits (None in entries that do not say).
    session_minutes: int | None = None
    preparation_minutes: int | None = None


@event(CONTEXT, "MentorBudgetExceeded", version=1)
class MentorBudgetExceeded(MentorBudgetEvent):
    """A mentor's time this month went over the programme's budget."""

    total_minutes: int


# --------------------------------------------------------------------------- programme rules


@event(CONTEXT, "SessionSettingsChanged", version=1)
class SessionSettingsChanged(SessionsEvent):
    """HR set a programme's session rules (its own stream, ``subject`` =
    ``programme_id``): the mentor time budget, as a share of a weekly working
    time, and the notice under which a cancellation counts as late. Until the
    first such event a programme has the defaults (5 % of 40 h, 24 h)."""

    programme_id: UUID
    budget_share_percent: float  # of working time a mentor may give the programme
    weekly_hours: float  # a mentor's working week
    monthly_budget_minutes: int  # what the two give per month (52/12 weeks)
    late_cancellation_hours: int
