"""Request and response bodies of the matching API. Requests forbid unknown
fields: a misspelt field is a 422 naming it, not silently ignored."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from libs.events.contexts.enrollment import Actor, MatchingObjective
from libs.events.contexts.matching import CriterionPoints, DissolutionReason, PairRef, RunInputs, RunUnmatched

Note = Annotated[str, Field(min_length=1, max_length=2000)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PinIn(Body):
    mentee_id: UUID
    mentor_id: UUID


class RunIn(Body):
    wave_ids: list[UUID] = Field(
        min_length=1, max_length=100, description="One wave, or several (cross-border: hr_admin)."
    )
    objective: MatchingObjective | None = Field(None, description="Default: the programme's objective.")
    pins: list[PinIn] = Field([], max_length=5000, description="Pairs HR fixed before the run.")

    @field_validator("wave_ids")
    @classmethod
    def _distinct_waves(cls, value: list[UUID]) -> list[UUID]:
        if len(set(value)) != len(value):
            raise ValueError("each wave at most once")
        return value

    @field_validator("pins")
    @classmethod
    def _one_pin_per_mentee(cls, value: list[PinIn]) -> list[PinIn]:
        mentees = [p.mentee_id for p in value]
        if len(set(mentees)) != len(mentees):
            raise ValueError("a mentee is pinned at most once")
        return value


class ChoiceIn(Body):
    mentor_ids: list[UUID] = Field(min_length=1, max_length=10, description="Mentors in order of preference.")

    @field_validator("mentor_ids")
    @classmethod
    def _distinct_mentors(cls, value: list[UUID]) -> list[UUID]:
        if len(set(value)) != len(value):
            raise ValueError("each mentor at most once")
        return value


class DeclineIn(Body):
    note: Note | None = None


class DissolveIn(Body):
    reason: DissolutionReason
    note: Note | None = None

    @field_validator("reason")
    @classmethod
    def _not_set_by_matching(cls, reason: DissolutionReason) -> DissolutionReason:
        if reason is DissolutionReason.TRANSFERRED:
            raise ValueError("matching sets this reason itself when enrollment records a transfer")
        return reason


class ExclusionIn(Body):
    mentee_id: UUID
    mentor_id: UUID
    note: Note | None = None


class EndedOut(BaseModel):
    at: str
    by: Actor
    side: str | None
    reason: str | None


class NotesExpiredOut(BaseModel):
    """GDPR retention: the pair's notes were shredded (they read as erased)."""

    at: str
    retention_days: int


class PairOut(BaseModel):
    pair_id: UUID
    programme_id: UUID
    wave_id: UUID
    country: str
    people: PairRef
    status: str
    origin: str
    run_id: UUID | None
    score: float
    breakdown: list[CriterionPoints]
    next_choices: list[UUID]
    follows_pair_id: UUID | None
    accepted_by: list[str]
    confirmed_by: str | None = None
    proposed_at: str
    proposed_by: Actor
    formed_at: str | None
    ended: EndedOut | None
    notes_expired: NotesExpiredOut | None = None
    version: int
    updated_at: str
    updated_by: Actor


class RunPairOut(BaseModel):
    pair_id: UUID | None  # None in a preview: nothing was recorded
    mentee_id: UUID
    mentor_id: UUID
    score: float
    pinned: bool


class RunOut(BaseModel):
    run_id: UUID | None  # None in a preview
    programme_id: UUID
    wave_ids: list[UUID]
    countries: list[str]
    objective: MatchingObjective
    inputs: RunInputs
    pairs: list[RunPairOut]
    unmatched: list[RunUnmatched]
    total_score: float
    optimal: bool
    duration_ms: float
    recorded: bool = True
    completed_at: str | None = None
    completed_by: Actor | None = None


class SuggestionOut(BaseModel):
    mentor_id: UUID
    wave_id: UUID
    country: str
    score: float
    remaining_capacity: int
    breakdown: list[CriterionPoints]
    mentor_interested: bool = Field(
        False, description="The mentor said it would like to mentor this mentee (shown, not scored)."
    )


class SuggestionsOut(BaseModel):
    mentee_id: UUID
    suggestions: list[SuggestionOut]


class ExclusionOut(BaseModel):
    exclusion_id: UUID
    programme_id: UUID
    mentee_id: UUID
    mentor_id: UUID
    country: str


class WaitingOut(BaseModel):
    position: int = Field(description="1 = first in line (who waited longest).")
    mentee_id: UUID
    reason: str = Field(description="Why the run left the mentee unmatched: capacity_exhausted or no_feasible_partner.")
    run_id: UUID
    since: datetime = Field(description="When the mentee first waited (a later run keeps the place).")


class WaitlistOut(BaseModel):
    wave_id: UUID
    items: list[WaitingOut]


class OfferOut(BaseModel):
    position: int
    mentee_id: UUID
    reason: str
    mentor_id: UUID
    score: float
    breakdown: list[CriterionPoints]


class OffersOut(BaseModel):
    wave_id: UUID
    offers: list[OfferOut] = Field(
        description="The best free mentor per waiting mentee, in waitlist order (propose one with "
        "POST /v1/mentees/{mentee_id}/choices)."
    )


# --------------------------------------------------------------------------- bulk confirmation


class RunConfirmIn(Body):
    pair_ids: list[UUID] | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description="The run's pairs to confirm (each a proposal now); unset: every open proposal of the run.",
    )

    @field_validator("pair_ids")
    @classmethod
    def _distinct_pairs(cls, value: list[UUID] | None) -> list[UUID] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("each pair at most once")
        return value


class SkippedPairOut(BaseModel):
    pair_id: UUID
    status: str = Field(description="Why it was not confirmed: the pair is no proposal any more.")


class RunConfirmedOut(BaseModel):
    run_id: UUID
    confirmed: list[UUID] = Field(description="Pairs formed by this call, each with its own PairFormed event.")
    skipped: list[SkippedPairOut] = Field(description="The run's pairs that were no proposal (whole-run calls only).")


# --------------------------------------------------------------------------- exclusions lifted


class ExclusionLiftIn(Body):
    reason: Note = Field(description="Why the pair may be proposed again (personal data: kept in the event only).")


class ExclusionLiftedOut(BaseModel):
    exclusion_id: UUID
    programme_id: UUID
    mentee_id: UUID
    mentor_id: UUID
    country: str
    lifted: bool = True


# --------------------------------------------------------------------------- the mentor's side


class SuggestedMenteeOut(BaseModel):
    mentee_id: UUID
    score: float
    breakdown: list[CriterionPoints]
    interest_expressed: bool


class SuggestedMenteesOut(BaseModel):
    mentor_id: UUID
    remaining_capacity: int
    mentees: list[SuggestedMenteeOut]


class InterestIn(Body):
    mentee_id: UUID


class InterestOut(BaseModel):
    interest_id: UUID
    programme_id: UUID
    mentee_id: UUID
    mentor_id: UUID
    country: str
    score: float = Field(description="The pair's score now, as the mentee's suggestions and a run compute it.")
