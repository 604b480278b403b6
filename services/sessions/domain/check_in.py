"""A check-in: a member's progress point on the pair (how it is going 1-5,
blockers, next step). One stream per check-in, written once."""

from __future__ import annotations

from uuid import UUID

from libs.events.contexts.enrollment import Actor
from libs.events.contexts.sessions import CheckInRecorded, Member
from libs.events.registry import DomainEvent
from libs.domain.aggregate import Aggregate
from services.sessions.domain.errors import Issues
from services.sessions.domain.session import check_pair_formed
from services.sessions.domain.values import MAX_MOOD, MIN_MOOD, Pair


class CheckIn(Aggregate):
    created_by = CheckInRecorded

    @classmethod
    def record_for(
        cls,
        *,
        check_in_id: UUID,
        pair: Pair,
        member: Member,
        mood: int,
        blockers: str | None,
        next_step: str | None,
        actor: Actor,
    ) -> CheckIn:
        issues = Issues()
        issues.check(MIN_MOOD <= mood <= MAX_MOOD, "mood", f"From {MIN_MOOD} (bad) to {MAX_MOOD} (very good).")
        issues.check(member is not Member.HR, "member", "A check-in is a member's: the mentee's or the mentor's.")
        issues.raise_if_any()
        check_pair_formed(pair)
        check_in = cls(pair.organisation)
        check_in.record(
            CheckInRecorded(
                **pair.facts(),
                actor=actor,
                check_in_id=check_in_id,
                member=member,
                mood=mood,
                blockers=blockers,
                next_step=next_step,
            )
        )
        return check_in

    @property
    def stream_id(self) -> str:
        return str(self.check_in_id)

    @property
    def country(self) -> str:
        return self.pair_country

    def apply(self, past: DomainEvent) -> None:
        assert isinstance(past, CheckInRecorded), f"no rule for {past.event_type()}"
        self.check_in_id, self.pair_country = past.check_in_id, past.country
