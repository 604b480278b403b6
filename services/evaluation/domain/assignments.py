"""Assignments: which surveys a pair's life triggers, and one assignment's
rules (answered once, by its participant; reminded when overdue; cancelled
when the pair is dissolved).

Triggers (the matching and sessions contexts' events):

* a pair formed: the mentee's digital maturity questionnaire (pre);
* a session held: the session feedback, to both members;
* a pair completed: the mentee's maturity questionnaire again (post, on the
  version the pre-questionnaire used, so the delta compares like with like)
  and closing self-assessment (with the committed actions), and the mentor's
  own questionnaire (what they learned about the company). The mentor's
  questionnaire is asked at the end rather than at the start: it asks what
  the mentoring taught them, which they only know then.

Ids derive from the triggering event, so handling a trigger twice (a replay,
a redelivery) makes the same assignment with the same event ids, which the
event store stores once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from libs.events.contexts.enrollment import Actor
from libs.events.contexts.evaluation import (
    ActionsCommitted,
    ActionStatus,
    AssignmentCancelled,
    AssignmentEvent,
    AssignmentReminded,
    CancellationReason,
    Phase,
    Respondent,
    SurveyAnswered,
    SurveyAssigned,
    SurveyKind,
)
from libs.events.registry import DomainEvent
from services.evaluation.domain.answers import CheckedAnswers
from services.evaluation.domain.errors import Conflict, InvalidInput, Issue

#: How long a participant has to answer, from the trigger.
DUE_AFTER = {
    Phase.PRE: timedelta(days=14),
    Phase.SESSION: timedelta(days=7),
    Phase.POST: timedelta(days=14),
    Phase.CLOSING: timedelta(days=14),
}
#: An overdue assignment is reminded again at most this often.
REMIND_EVERY = timedelta(days=7)
_IDS = uuid.UUID("5b1f3c7e-2d0a-4c59-9a52-6f0e8b7d1c34")  # namespace of derived ids


def derived_id(*parts: object) -> UUID:
    return uuid.uuid5(_IDS, ":".join(str(p) for p in parts))


@dataclass(frozen=True)
class Pair:
    pair_id: UUID
    programme_id: UUID
    wave_id: UUID
    country: str
    mentee_id: UUID
    mentor_id: UUID


@dataclass(frozen=True)
class Plan:
    """An assignment a trigger calls for."""

    kind: SurveyKind
    phase: Phase
    respondent: Respondent
    participant_id: UUID
    due_at: datetime
    session_id: UUID | None = None


def on_pair_formed(pair: Pair, at: datetime) -> list[Plan]:
    return [Plan(SurveyKind.DIGITAL_MATURITY, Phase.PRE, Respondent.MENTEE, pair.mentee_id, at + DUE_AFTER[Phase.PRE])]


def on_session_held(pair: Pair, session_id: UUID, at: datetime) -> list[Plan]:
    due = at + DUE_AFTER[Phase.SESSION]
    return [
        Plan(SurveyKind.SESSION_FEEDBACK, Phase.SESSION, Respondent.MENTEE, pair.mentee_id, due, session_id),
        Plan(SurveyKind.SESSION_FEEDBACK, Phase.SESSION, Respondent.MENTOR, pair.mentor_id, due, session_id),
    ]


def on_pair_completed(pair: Pair, at: datetime) -> list[Plan]:
    due = at + DUE_AFTER[Phase.CLOSING]
    return [
        Plan(SurveyKind.DIGITAL_MATURITY, Phase.POST, Respondent.MENTEE, pair.mentee_id, due),
        Plan(SurveyKind.CLOSING_SELF_ASSESSMENT, Phase.CLOSING, Respondent.MENTEE, pair.mentee_id, due),
        Plan(SurveyKind.MENTOR_QUESTIONNAIRE, Phase.CLOSING, Respondent.MENTOR, pair.mentor_id, due),
    ]


def assign(
    plan: Plan, pair: Pair, template_id: UUID, template_version: int, trigger_id: UUID, actor: Actor
) -> SurveyAssigned:
    return SurveyAssigned(
        assignment_id=derived_id(trigger_id, plan.kind.value, plan.phase.value, plan.participant_id),
        programme_id=pair.programme_id,
        wave_id=pair.wave_id,
        country=pair.country,
        pair_id=pair.pair_id,
        participant_id=plan.participant_id,
        template_id=template_id,
        template_version=template_version,
        kind=plan.kind,
        phase=plan.phase,
        respondent=plan.respondent,
        session_id=plan.session_id,
        due_at=plan.due_at,
        actor=actor,
    )


OPEN, ANSWERED, CANCELLED = "open", "answered", "cancelled"


@dataclass(frozen=True)
class Assignment:
    """One assignment as its stream left it; its methods return the new
    events (never more than the rules allow) without changing it."""

    organisation: str
    assigned: SurveyAssigned
    status: str = OPEN
    reminders: int = 0
    last_reminded_at: datetime | None = None
    version: int = 1

    @classmethod
    def from_events(cls, organisation: str, events: Sequence[AssignmentEvent]) -> Assignment:
        first = events[0]
        assert isinstance(first, SurveyAssigned), "an assignment stream starts with SurveyAssigned"
        state = cls(organisation, first)
        for event in events[1:]:
            if isinstance(event, SurveyAnswered):
                state = replace(state, status=ANSWERED)
            elif isinstance(event, AssignmentCancelled):
                state = replace(state, status=CANCELLED)
            elif isinstance(event, AssignmentReminded):
                state = replace(state, reminders=event.reminder, last_reminded_at=event.reminded_at)
            state = replace(state, version=state.version + 1)
        return state

    @classmethod
    def rebuild(cls, organisation: str, events: Sequence[DomainEvent]) -> Assignment | None:
        """The assignment its stream holds; None if the stream is not an
        assignment's (what ``libs.domain.repository.Repository.get`` folds)."""
        if not events or not isinstance(events[0], SurveyAssigned):
            return None
        return cls.from_events(organisation, events)  # type: ignore[arg-type]

    def _ids(self) -> dict[str, object]:
        a = self.assigned
        return {
            "assignment_id": a.assignment_id,
            "programme_id": a.programme_id,
            "wave_id": a.wave_id,
            "country": a.country,
            "pair_id": a.pair_id,
            "participant_id": a.participant_id,
        }

    def is_overdue(self, now: datetime) -> bool:
        return self.status == OPEN and now > self.assigned.due_at

    def ensure_open(self) -> None:
        if self.status == ANSWERED:
            raise Conflict("This survey was answered already; an answer cannot be changed.")
        if self.status == CANCELLED:
            raise Conflict("This survey was cancelled (the pair was dissolved).")

    def answer(
        self, checked: CheckedAnswers, actions: list[tuple[str, ActionStatus]] | None, actor: Actor
    ) -> list[AssignmentEvent]:
        """Answer once; actions only with the mentee's closing self-assessment."""
        self.ensure_open()
        a = self.assigned
        takes_actions = a.kind is SurveyKind.CLOSING_SELF_ASSESSMENT
        if actions is not None and not takes_actions:
            raise InvalidInput([Issue("actions", "Only the closing self-assessment lists committed actions.")])
        events: list[AssignmentEvent] = [
            SurveyAnswered(
                **self._ids(),
                template_id=a.template_id,
                template_version=a.template_version,
                kind=a.kind,
                phase=a.phase,
                answers=checked.items,
                free_text=checked.free_text,
                actor=actor,
            )
        ]
        if takes_actions:
            statuses = [status for _, status in actions or []]
            events.append(
                ActionsCommitted(
                    **self._ids(),
                    statuses=statuses,
                    descriptions=[description for description, _ in actions or []],
                    started=statuses.count(ActionStatus.STARTED),
                    planned=statuses.count(ActionStatus.PLANNED),
                    actor=actor,
                )
            )
        return events

    def remind(self, now: datetime, actor: Actor) -> list[AssignmentEvent]:
        """A reminder if overdue and not reminded in the last ``REMIND_EVERY``."""
        if not self.is_overdue(now):
            return []
        if self.last_reminded_at is not None and now - self.last_reminded_at < REMIND_EVERY:
            return []
        return [
            AssignmentReminded(
                **self._ids(), due_at=self.assigned.due_at, reminder=self.reminders + 1, reminded_at=now, actor=actor
            )
        ]

    def cancel(self, reason: CancellationReason, actor: Actor) -> list[AssignmentEvent]:
        if self.status != OPEN:
            return []
        return [AssignmentCancelled(**self._ids(), reason=reason, actor=actor)]
