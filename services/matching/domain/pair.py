"""A pair's life, folded from its stream (one stream per pair)::

    proposed --accept(mentee)--+
             --accept(mentor)--+--> formed --> completed
             --confirm (hr)----+          \\-> dissolved (with a reason)
             --decline---------> declined

Each method checks that the change is legal here (else ``IllegalTransition``,
a 409) and records the events; the repository appends them with the version
the pair was loaded at, so two concurrent changes cannot both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from libs.domain.aggregate import Aggregate
from libs.events.contexts.enrollment import Actor
from libs.events.contexts.matching import (
    CriterionPoints,
    DissolutionReason,
    PairAccepted,
    PairCompleted,
    PairDeclined,
    PairDissolved,
    PairEvent,
    PairFormed,
    PairNotesExpired,
    PairProposed,
    PairRef,
    ProposalOrigin,
    Side,
)
from services.matching.domain.errors import IllegalTransition


class PairStatus(StrEnum):
    PROPOSED = "proposed"
    FORMED = "formed"
    DECLINED = "declined"
    DISSOLVED = "dissolved"
    COMPLETED = "completed"


#: Statuses that hold one of the mentor's seats.
SEAT_HOLDING = (PairStatus.PROPOSED, PairStatus.FORMED)
#: Statuses of a pair that is over (its notes expire after the programme's retention).
ENDED = (PairStatus.DECLINED, PairStatus.DISSOLVED, PairStatus.COMPLETED)


class Pair(Aggregate):
    """The pair aggregate: state from its events, new events pending until appended."""

    created_by = PairProposed
    kind = "pair"

    def __init__(self, organisation: str) -> None:
        super().__init__(organisation)
        self.accepted: set[Side] = set()
        self.status = PairStatus.PROPOSED
        self.notes_expired = False

    # -- building --------------------------------------------------------------------

    @classmethod
    def propose(
        cls,
        *,
        pair_id: UUID,
        organisation: str,
        programme_id: UUID,
        people: PairRef,
        origin: ProposalOrigin,
        score: float,
        breakdown: list[CriterionPoints],
        actor: Actor,
        run_id: UUID | None = None,
        next_choices: Sequence[UUID] = (),
        follows_pair_id: UUID | None = None,
    ) -> Pair:
        self = cls(organisation)
        self.record(
            PairProposed(
                pair_id=pair_id,
                programme_id=programme_id,
                wave_id=people.mentee_wave_id,
                country=people.mentee_country,
                people=people,
                actor=actor,
                origin=origin,
                run_id=run_id,
                score=score,
                breakdown=breakdown,
                next_choices=list(next_choices),
                follows_pair_id=follows_pair_id,
            )
        )
        return self

    @property
    def id(self) -> UUID:
        return self.proposal.pair_id

    @property
    def country(self) -> str:
        return self.proposal.country

    def side_of(self, participant_id: str) -> Side | None:
        """The side a participant holds in this pair (None: not in it)."""
        people = self.proposal.people
        if participant_id == str(people.mentee_id):
            return Side.MENTEE
        if participant_id == str(people.mentor_id):
            return Side.MENTOR
        return None

    # -- commands --------------------------------------------------------------------

    def accept(self, side: Side, actor: Actor) -> None:
        """One side accepts; HR (``Side.HR``) confirms for both. Forms the pair
        when both people accepted or HR confirmed."""
        self._require(PairStatus.PROPOSED, "accept")
        if side in self.accepted:
            raise IllegalTransition(f"The {side.value} side accepted this pair already.")
        self.record(PairAccepted(**self._base(actor), side=side))
        if side is Side.HR or {Side.MENTEE, Side.MENTOR} <= self.accepted:
            self.record(PairFormed(**self._base(actor), score=self.proposal.score, confirmed_by=side))

    def decline(self, side: Side, actor: Actor, note: str | None = None) -> None:
        self._require(PairStatus.PROPOSED, "decline")
        self.record(PairDeclined(**self._base(actor), side=side, note=note))

    def dissolve(self, reason: DissolutionReason, side: Side, actor: Actor, note: str | None = None) -> None:
        self._require(PairStatus.FORMED, "dissolve")
        self.record(PairDissolved(**self._base(actor), reason=reason, side=side, note=note))

    def complete(self, actor: Actor) -> None:
        self._require(PairStatus.FORMED, "complete")
        self.record(PairCompleted(**self._base(actor)))

    def expire_notes(self, actor: Actor, ended_at: datetime, retention_days: int) -> None:
        """GDPR retention: the ended pair's free-text notes are past their time
        (the caller shreds the pair's key)."""
        if self.status not in ENDED:
            raise IllegalTransition(f"The notes of a {self.status.value} pair are still in use.")
        if self.notes_expired:
            raise IllegalTransition("The notes of this pair have expired already.")
        self.record(PairNotesExpired(**self._base(actor), ended_at=ended_at, retention_days=retention_days))

    # -- folding ---------------------------------------------------------------------

    def _require(self, status: PairStatus, action: str) -> None:
        if self.status is not status:
            raise IllegalTransition(f"Cannot {action} a pair that is {self.status.value}.")

    def _base(self, actor: Actor) -> dict:
        p = self.proposal
        return {
            "pair_id": p.pair_id,
            "programme_id": p.programme_id,
            "wave_id": p.wave_id,
            "country": p.country,
            "people": p.people,
            "actor": actor,
        }

    def apply(self, event: PairEvent) -> None:
        if isinstance(event, PairProposed):
            self.proposal = event
        elif isinstance(event, PairAccepted):
            self.accepted.add(event.side)
        elif isinstance(event, PairFormed):
            self.status = PairStatus.FORMED
        elif isinstance(event, PairDeclined):
            self.status = PairStatus.DECLINED
        elif isinstance(event, PairDissolved):
            self.status = PairStatus.DISSOLVED
        elif isinstance(event, PairCompleted):
            self.status = PairStatus.COMPLETED
        elif isinstance(event, PairNotesExpired):
            self.notes_expired = True
        else:
            raise TypeError(f"not a pair event: {event.event_type()}")
