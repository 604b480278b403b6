"""A mentor's time in one calendar month: preparation plus session time,
against the budget the programme allows.

Each held session logs its minutes. The month goes over budget when its total
passes the budget (reaching it exactly is still within); that is recorded
once per month, by the entry that crossed it.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from libs.events.contexts.enrollment import Actor
from libs.events.contexts.sessions import MentorBudgetEvent, MentorBudgetExceeded, MentorTimeLogged
from libs.events.registry import DomainEvent
from libs.domain.aggregate import Aggregate


def budget_stream(mentor_id: UUID, month: date) -> str:
    return f"budget:{mentor_id}:{month:%Y-%m}"


class MentorMonth(Aggregate):
    created_by = MentorTimeLogged

    @classmethod
    def start(cls, *, organisation: str, mentor_id: UUID, programme_id: UUID, country: str, month: date) -> MentorMonth:
        """A month with nothing logged yet."""
        if month.day != 1:
            raise ValueError("a budget month is named by its first day")
        mentor_month = cls(organisation)
        mentor_month.facts = {"mentor_id": mentor_id, "programme_id": programme_id, "country": country, "month": month}
        mentor_month.total_minutes = 0
        mentor_month.over_budget = False
        return mentor_month

    @property
    def stream_id(self) -> str:
        return budget_stream(self.facts["mentor_id"], self.facts["month"])

    @property
    def country(self) -> str:
        return self.facts["country"]

    def log(
        self,
        *,
        pair_id: UUID,
        session_id: UUID | None,
        session_minutes: int,
        preparation_minutes: int,
        budget_minutes: int,
        actor: Actor,
    ) -> None:
        minutes = session_minutes + preparation_minutes
        total = self.total_minutes + minutes
        self.record(
            MentorTimeLogged(
                **self.facts,
                actor=actor,
                budget_minutes=budget_minutes,
                pair_id=pair_id,
                session_id=session_id,
                minutes=minutes,
                total_minutes=total,
                session_minutes=session_minutes,
                preparation_minutes=preparation_minutes,
            )
        )
        if total > budget_minutes and not self.over_budget:
            self.record(
                MentorBudgetExceeded(**self.facts, actor=actor, budget_minutes=budget_minutes, total_minutes=total)
            )

    def apply(self, past: DomainEvent) -> None:
        assert isinstance(past, MentorBudgetEvent), f"{past.event_type()} is not a budget event"
        if not hasattr(self, "facts"):
            self.facts = past.model_dump(include={"mentor_id", "programme_id", "country", "month"})
            self.total_minutes, self.over_budget = 0, False
        if isinstance(past, MentorTimeLogged):
            self.total_minutes = past.total_minutes
        elif isinstance(past, MentorBudgetExceeded):
            self.over_budget = True
        else:
            raise TypeError(f"no rule for {past.event_type()}")
