"""A pair's meeting: scheduled, moved, then held, missed or cancelled.

    scheduled ─┬─ move (any number of times, to a future time)
               ├─> held      (once it has started)
               ├─> no_show   (once it has started)
               └─> cancelled (any time; late below the programme's notice)

Rules that need other data arrive as arguments: the pair, the programme's
themes (None while the programme is unknown here), the sessions already
occupying the two people's time (``busy``), and "now" (an injected clock).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

from libs.domain.aggregate import Aggregate
from libs.events.contexts.enrollment import Actor
from libs.events.contexts.sessions import (
    Member,
    SessionCancelled,
    SessionEvent,
    SessionFormat,
    SessionHeld,
    SessionMoved,
    SessionNoShow,
    SessionScheduled,
)
from libs.events.registry import DomainEvent
from services.sessions.domain.errors import InvalidState, Issues, TimeTaken
from services.sessions.domain.values import (
    MAX_ACTUAL_MINUTES,
    MAX_DURATION_MINUTES,
    MAX_PREPARATION_MINUTES,
    MIN_DURATION_MINUTES,
    Busy,
    Pair,
    PairStatus,
    SessionStatus,
    Slot,
)


def check_duration(issues: Issues, field_name: str, minutes: int) -> None:
    issues.check(
        MIN_DURATION_MINUTES <= minutes <= MAX_DURATION_MINUTES,
        field_name,
        f"A session lasts {MIN_DURATION_MINUTES} to {MAX_DURATION_MINUTES} minutes.",
    )


def check_future(issues: Issues, field_name: str, starts_at: datetime, now: datetime) -> None:
    issues.check(starts_at > now, field_name, "A session cannot be scheduled in the past.")


def check_topics(issues: Issues, field_name: str, topics: Sequence[str], themes: frozenset[str] | None) -> None:
    """Topics are theme codes of the programme, each named once."""
    issues.check(len(set(topics)) == len(topics), field_name, "A topic is named twice.")
    if topics and themes is None:
        # Not the caller's fault: enrollment's event has not reached us yet.
        raise InvalidState("The programme's themes are not known to the sessions service yet; retry shortly.")
    for index, topic in enumerate(topics):
        issues.check(topic in (themes or ()), f"{field_name}.{index}", f"'{topic}' is not a theme of the programme.")


def check_pair_formed(pair: Pair) -> None:
    if pair.status is not PairStatus.FORMED:
        raise InvalidState(f"The pair is {pair.status.value}: sessions are only for a formed pair.")


def first_clash(slot: Slot, busy: Iterable[Busy], *, ignore: UUID | None = None) -> Busy | None:
    """The earliest session in ``busy`` (other than ``ignore``) that ``slot`` overlaps."""
    clashes = [b for b in busy if b.session_id != ignore and b.slot.overlaps(slot)]
    return min(clashes, key=lambda b: b.slot.starts_at, default=None)


def check_free(slot: Slot, busy: Iterable[Busy], *, ignore: UUID | None = None) -> None:
    clash = first_clash(slot, busy, ignore=ignore)
    if clash is not None:
        raise TimeTaken(clash.participant_id, clash.session_id)


class Session(Aggregate):
    created_by = SessionScheduled
    kind = "session"

    pair: Pair
    status: SessionStatus
    slot: Slot

    @property
    def stream_id(self) -> str:
        return str(self.session_id)

    @property
    def country(self) -> str:
        return self.facts["country"]

    # -- commands ------------------------------------------------------------------

    @classmethod
    def schedule(
        cls,
        *,
        session_id: UUID,
        pair: Pair,
        by: Member,
        slot: Slot,
        session_format: SessionFormat,
        planned_topics: Sequence[str],
        themes: frozenset[str] | None,
        busy: Iterable[Busy],
        now: datetime,
        actor: Actor,
    ) -> Session:
        issues = Issues()
        check_duration(issues, "duration_minutes", slot.minutes)
        check_future(issues, "starts_at", slot.starts_at, now)
        check_topics(issues, "planned_topics", planned_topics, themes)
        issues.raise_if_any()
        check_pair_formed(pair)
        check_free(slot, busy)
        session = cls(pair.organisation)
        session.record(
            SessionScheduled(
                **pair.facts(),
                actor=actor,
                session_id=session_id,
                scheduled_by=by,
                starts_at=slot.starts_at,
                duration_minutes=slot.minutes,
                format=session_format,
                planned_topics=list(planned_topics),
            )
        )
        return session

    def move(self, *, pair: Pair, by: Member, slot: Slot, busy: Iterable[Busy], now: datetime, actor: Actor) -> None:
        issues = Issues()
        check_duration(issues, "duration_minutes", slot.minutes)
        check_future(issues, "starts_at", slot.starts_at, now)
        issues.raise_if_any()
        self._require_scheduled("moved")
        check_pair_formed(pair)
        check_free(slot, busy, ignore=self.session_id)
        self.record(
            SessionMoved(
                **self.facts,
                actor=actor,
                moved_by=by,
                previous_starts_at=self.slot.starts_at,
                starts_at=slot.starts_at,
                duration_minutes=slot.minutes,
            )
        )

    def cancel(self, *, by: Member, reason: str, late_threshold_hours: int, now: datetime, actor: Actor) -> None:
        self._require_scheduled("cancelled")
        notice_hours = round((self.slot.starts_at - now).total_seconds() / 3600, 2)
        self.record(
            SessionCancelled(
                **self.facts,
                actor=actor,
                cancelled_by=by,
                reason=reason,
                notice_hours=notice_hours,
                late=notice_hours < late_threshold_hours,
            )
        )

    def hold(
        self,
        *,
        actual_minutes: int,
        preparation_minutes: int,
        topics_covered: Sequence[str],
        note: str | None,
        themes: frozenset[str] | None,
        sequence_in_pair: int,
        now: datetime,
        actor: Actor,
    ) -> None:
        issues = Issues()
        issues.check(
            0 < actual_minutes <= MAX_ACTUAL_MINUTES, "actual_minutes", f"1 to {MAX_ACTUAL_MINUTES} minutes."
        )
        issues.check(
            0 <= preparation_minutes <= MAX_PREPARATION_MINUTES,
            "preparation_minutes",
            f"0 to {MAX_PREPARATION_MINUTES} minutes.",
        )
        check_topics(issues, "topics_covered", topics_covered, themes)
        issues.raise_if_any()
        self._require_started("held", now)
        self.record(
            SessionHeld(
                **self.facts,
                actor=actor,
                held_at=self.slot.starts_at,
                actual_minutes=actual_minutes,
                preparation_minutes=preparation_minutes,
                topics_covered=list(topics_covered),
                note=note,
                sequence_in_pair=sequence_in_pair,
            )
        )

    def no_show(self, *, absent: Member, reported_by: Member, now: datetime, actor: Actor) -> None:
        issues = Issues()
        issues.check(absent is not Member.HR, "absent", "The mentee or the mentor.")
        issues.raise_if_any()
        self._require_started("marked a no-show", now)
        self.record(SessionNoShow(**self.facts, actor=actor, absent=absent, reported_by=reported_by))

    def _require_scheduled(self, verb: str) -> None:
        if self.status is not SessionStatus.SCHEDULED:
            raise InvalidState(f"The session is {self.status.value.replace('_', '-')}: it cannot be {verb}.")

    def _require_started(self, verb: str, now: datetime) -> None:
        self._require_scheduled(verb)
        if now < self.slot.starts_at:
            raise InvalidState(f"The session has not started yet: it cannot be {verb}.")

    # -- state -----------------------------------------------------------------------

    def apply(self, past: DomainEvent) -> None:
        assert isinstance(past, SessionEvent), f"{past.event_type()} is not a session event"
        if isinstance(past, SessionScheduled):
            self.session_id = past.session_id
            self.facts = past.model_dump(
                include={"session_id", "pair_id", "programme_id", "wave_id", "country", "mentee_id", "mentor_id"}
            )
            self.status = SessionStatus.SCHEDULED
            self.slot = Slot(past.starts_at, past.duration_minutes)
        elif isinstance(past, SessionMoved):
            self.slot = Slot(past.starts_at, past.duration_minutes)
        elif isinstance(past, SessionHeld):
            self.status = SessionStatus.HELD
        elif isinstance(past, SessionNoShow):
            self.status = SessionStatus.NO_SHOW
        elif isinstance(past, SessionCancelled):
            self.status = SessionStatus.CANCELLED
        else:
            raise TypeError(f"no rule for {past.event_type()}")

    @property
    def mentor_id(self) -> UUID:
        return self.facts["mentor_id"]

    @property
    def pair_id(self) -> UUID:
        return self.facts["pair_id"]
