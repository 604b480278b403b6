"""A programme's session rules, set by HR in the sessions service (its own
stream per programme). A programme nobody configured has the defaults."""

from __future__ import annotations

from uuid import UUID

from libs.events.contexts.enrollment import Actor
from libs.events.contexts.sessions import SessionSettingsChanged
from libs.events.registry import DomainEvent
from libs.domain.aggregate import Aggregate
from services.sessions.domain.values import DEFAULT_RULES, SessionRules


class ProgrammeRules(Aggregate):
    created_by = SessionSettingsChanged

    @classmethod
    def defaults(cls, organisation: str, programme_id: UUID) -> ProgrammeRules:
        rules = cls(organisation)
        rules.programme_id, rules.rules = programme_id, DEFAULT_RULES
        return rules

    @property
    def stream_id(self) -> str:
        return str(self.programme_id)

    def change(self, rules: SessionRules, actor: Actor) -> None:
        """Record new rules; setting the rules in force again records nothing."""
        if rules == self.rules and self.version > 0:
            return
        self.record(
            SessionSettingsChanged(
                actor=actor,
                programme_id=self.programme_id,
                budget_share_percent=rules.budget_share_percent,
                weekly_hours=rules.weekly_hours,
                monthly_budget_minutes=rules.monthly_budget_minutes,
                late_cancellation_hours=rules.late_cancellation_hours,
            )
        )

    def apply(self, past: DomainEvent) -> None:
        assert isinstance(past, SessionSettingsChanged), f"no rule for {past.event_type()}"
        self.programme_id = past.programme_id
        self.rules = SessionRules(past.budget_share_percent, past.weekly_hours, past.late_cancellation_hours)
