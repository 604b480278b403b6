"""Events of the matching context: runs, proposals and the life of a pair.
Emitted by ``services/matching`` on topic ``binome.matching.events``;
consumed by sessions and evaluation (formed / dissolved / completed pairs) and
by insights (everything).

A pair's life, one stream per pair (``subject`` = ``pair_id``)::

    PairProposed ─┬─ PairAccepted(mentee) ─┐
                  ├─ PairAccepted(mentor) ─┼─> PairFormed ─┬─> PairCompleted
                  ├─ PairAccepted(hr) ─────┘               └─> PairDissolved
                  └─ PairDeclined (the pair is over; the slot is free again)

A matching run is its own stream (``subject`` = ``run_id``): one
``MatchingRunCompleted`` recording inputs, objective, result and unmatched
people with the reason, followed by one ``PairProposed`` per pair it found
(each on the pair's stream).

Conventions, as in the enrollment context:

* ``data`` carries the ids a consumer needs to file the fact on its own:
  programme, the waves and countries of both people, both participant ids.
  The pair's *home* (envelope ``country``, ``wave_id``, ``country``) is the
  mentee's wave: a cross-border pair belongs to the mentee's committee, and
  the mentor's wave and country are named beside it.
* ``actor`` says who made the change.
* Scores are on 0..100; a breakdown lists every criterion with its weight,
  its raw value in [0, 1] and the points it gave.
* Free text (a reason someone typed) is personal data and listed in
  ``personal_fields``; machine-readable reasons are codes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from libs.events.contexts.enrollment import Actor, MatchingObjective
from libs.events.registry import DomainEvent, event

CONTEXT = "matching"


# --------------------------------------------------------------------------- enums


class Side(StrEnum):
    """Who acts on a proposal: one of the two people, or HR overriding them."""

    MENTEE = "mentee"
    MENTOR = "mentor"
    HR = "hr"


class ProposalOrigin(StrEnum):
    RUN = "run"  # found by a matching run
    CHOICE = "choice"  # picked by the mentee among suggestions
    HR = "hr"  # set by HR by hand


class DissolutionReason(StrEnum):
    NO_CHEMISTRY = "no_chemistry"
    AVAILABILITY = "availability"
    LEFT_PROGRAMME = "left_programme"  # one of the two withdrew from the programme
    TRANSFERRED = "transferred"  # one of the two moved to another wave (enrollment's ParticipantTransferred)
    LEFT_COMPANY = "left_company"
    HR_DECISION = "hr_decision"
    OTHER = "other"


class UnmatchedCode(StrEnum):
    """Why a run left someone without a partner."""

    NO_FEASIBLE_PARTNER = "no_feasible_partner"  # every pair breaks a hard constraint
    CAPACITY_EXHAUSTED = "capacity_exhausted"  # feasible partners, but their slots went to others
    NOT_SELECTED = "not_selected"  # the objective preferred other pairs
    NO_CAPACITY = "no_capacity"  # a mentor with no slot left


# --------------------------------------------------------------------------- values


class Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CriterionPoints(Value):
    """One criterion of a pair's score: why the pair scored what it did."""

    criterion: str  # a matching criterion code (themes, language, time_zone, ...)
    weight: float  # normalised: the weights of a score sum to 1
    raw: float  # 0..1
    points: float  # weight * raw * 100
    detail: str  # a short machine-made explanation ("shares: en, fr")


class PairRef(Value):
    """The two people of a pair and where each comes from."""

    mentee_id: UUID
    mentor_id: UUID
    mentee_wave_id: UUID
    mentor_wave_id: UUID
    mentee_country: str
    mentor_country: str


class RunPair(Value):
    pair_id: UUID
    mentee_id: UUID
    mentor_id: UUID
    score: float
    pinned: bool = False


class RunUnmatched(Value):
    participant_id: UUID
    role: str  # mentor | mentee
    code: UnmatchedCode
    detail: str


class RunInputs(Value):
    """What a run saw: enough to re-run it and get the same answer."""

    mentee_ids: list[UUID]
    mentor_ids: list[UUID]
    mentor_capacity: dict[str, int]  # mentor id -> free slots at run time
    pinned: list[PairRef]
    excluded: int  # number of HR exclusions in force
    weights: dict[str, float]  # criterion -> weight, as the programme set them
    language_required: bool
    policy_digest: str  # sha256 of the whole scoring policy and candidate pool


# --------------------------------------------------------------------------- bases


class MatchingEvent(DomainEvent):
    actor: Actor


class PairEvent(MatchingEvent):
    """Every fact about one pair: its stream id is ``pair_id``.

    What the two people write about their pair is sealed with the pair's key,
    owned by both: erasing either of them shreds it."""

    personal_key: ClassVar[str] = "pair_id"
    personal_owners: ClassVar[tuple[str, ...]] = ("people.mentee_id", "people.mentor_id")

    pair_id: UUID
    programme_id: UUID
    wave_id: UUID  # the mentee's wave: the pair's home
    country: str  # the mentee's country
    people: PairRef


# --------------------------------------------------------------------------- runs


@event(CONTEXT, "MatchingRunCompleted", version=1)
class MatchingRunCompleted(MatchingEvent):
    """A matching run found a global optimum for one or several waves."""

    run_id: UUID
    programme_id: UUID
    wave_ids: list[UUID]
    countries: list[str]
    objective: MatchingObjective
    inputs: RunInputs
    pairs: list[RunPair]
    unmatched: list[RunUnmatched]
    total_score: float
    optimal: bool  # False only if the solver had to stop at a bound
    duration_ms: float


# --------------------------------------------------------------------------- pairs


@event(CONTEXT, "PairProposed", version=1)
class PairProposed(PairEvent):
    """A pair was proposed, with its score and the reasons for it."""

    origin: ProposalOrigin
    run_id: UUID | None = None
    score: float
    breakdown: list[CriterionPoints]
    #: For a mentee's choice: the mentors it ranked after this one, tried in
    #: order when a mentor declines.
    next_choices: list[UUID] = []
    #: For a choice proposed after a decline: the declined pair it follows.
    follows_pair_id: UUID | None = None


@event(CONTEXT, "PairAccepted", version=1)
class PairAccepted(PairEvent):
    """One side accepted the proposal (``hr`` confirms for both)."""

    side: Side


@event(CONTEXT, "PairDeclined", version=1)
class PairDeclined(PairEvent):
    """One side declined: the proposal ends and the mentor's slot is free."""

    personal_fields = frozenset({"note"})

    side: Side
    note: str | None = None


@event(CONTEXT, "PairFormed", version=1)
class PairFormed(PairEvent):
    """Both sides accepted (or HR confirmed): the pair is working together."""

    score: float
    confirmed_by: Side  # hr when HR confirmed, else the side that accepted last


@event(CONTEXT, "PairDissolved", version=1)
class PairDissolved(PairEvent):
    """A formed pair stopped before its end; both people return to the pool
    and will never be proposed to each other again."""

    personal_fields = frozenset({"note"})

    reason: DissolutionReason
    side: Side
    note: str | None = None


@event(CONTEXT, "PairCompleted", version=1)
class PairCompleted(PairEvent):
    """A formed pair reached the end of its mentoring."""


@event(CONTEXT, "PairNotesExpired", version=1)
class PairNotesExpired(PairEvent):
    """GDPR retention: the pair ended ``retention_days`` ago or more, so the
    pair's data key was shredded; every free-text note sealed with it (decline
    and dissolve notes, session notes, cancellation reasons, check-ins) now
    reads as erased, and every service drops the pair's free text from its
    read models. Carries no personal data itself."""

    ended_at: datetime
    retention_days: int


# --------------------------------------------------------------------------- exclusions


@event(CONTEXT, "PairExcluded", version=1)
class PairExcluded(MatchingEvent):
    """HR ruled a mentee-mentor pair out: no run or choice will propose it.

    One stream per excluded pair (``subject`` = ``exclusion_id``, derived
    from the two participant ids), so excluding a pair twice is a conflict.
    ``country`` is the mentee's: the committee that owns the mentee decides.
    """

    personal_fields = frozenset({"note"})
    personal_key: ClassVar[str] = "exclusion_id"
    personal_owners: ClassVar[tuple[str, ...]] = ("mentee_id", "mentor_id")

    exclusion_id: UUID
    programme_id: UUID
    mentee_id: UUID
    mentor_id: UUID
    country: str
    note: str | None = None


@event(CONTEXT, "ExclusionLifted", version=1)
class ExclusionLifted(MatchingEvent):
    """HR lifted an exclusion, with a reason: runs and choices may propose
    the pair again. On the stream of the ``PairExcluded`` it lifts; a later
    ``PairExcluded`` on that stream excludes the pair again."""

    personal_fields = frozenset({"reason"})
    personal_key: ClassVar[str] = "exclusion_id"
    personal_owners: ClassVar[tuple[str, ...]] = ("mentee_id", "mentor_id")

    exclusion_id: UUID
    programme_id: UUID
    mentee_id: UUID
    mentor_id: UUID
    country: str  # the mentee's
    reason: str


@event(CONTEXT, "MentorInterestExpressed", version=1)
class MentorInterestExpressed(MatchingEvent):
    """A mentor would like to mentor this mentee (from its view of suggested
    mentees). Shown to HR, the committee and in the mentee's suggestions; not
    a criterion of the score, so a run and the suggestions still score a
    pair alike. One stream per mentor and mentee (``interest_id`` derives from
    both): saying it twice is a conflict."""

    interest_id: UUID
    programme_id: UUID
    mentee_id: UUID
    mentor_id: UUID
    country: str  # the mentee's: its committee sees it
