"""A wave: one country's cohort of a programme. open -> enrolment closed -> ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from libs.events.contexts.enrollment import Actor, WaveEnded, WaveEnrolmentClosed, WaveOpened
from libs.domain.aggregate import Aggregate
from services.enrollment.domain.errors import InvalidState, Issues
from services.enrollment.domain.programme import Programme
from services.enrollment.domain.values import WaveStatus


@dataclass(frozen=True)
class WavePlan:
    """What opening a wave decides."""

    name: str
    region: str
    country: str  # ISO 3166-1 alpha-2, upper case
    committee: str  # the owning regional HR committee
    starts_on: date
    ends_on: date
    target_pairs: int
    enrolment_closes_on: date | None = None


class Wave(Aggregate):
    created_by = WaveOpened
    kind = "wave"

    opened: WaveOpened
    status: WaveStatus

    @classmethod
    def open(cls, *, wave_id: UUID, programme: Programme, plan: WavePlan, actor: Actor) -> Wave:
        issues = Issues()
        country = plan.country
        issues.check(
            len(country) == 2 and country.isalpha() and country.isupper(),
            "country",
            "An ISO 3166-1 alpha-2 code, upper case.",
        )
        issues.check(plan.ends_on > plan.starts_on, "ends_on", "A wave ends after it starts.")
        issues.check(plan.target_pairs >= 1, "target_pairs", "At least one pair.")
        issues.check(
            plan.enrolment_closes_on is None or plan.enrolment_closes_on <= plan.ends_on,
            "enrolment_closes_on",
            "Enrolment closes on or before the wave's last day.",
        )
        issues.raise_if_any()
        self = cls(programme.organisation)
        self.record(
            WaveOpened(
                wave_id=wave_id,
                programme_id=programme.id,
                wave_name=plan.name,
                region=plan.region,
                country=plan.country,
                committee=plan.committee,
                starts_on=plan.starts_on,
                ends_on=plan.ends_on,
                target_pairs=plan.target_pairs,
                enrolment_closes_on=plan.enrolment_closes_on,
                actor=actor,
            )
        )
        return self

    @property
    def programme_id(self) -> UUID:
        return self.opened.programme_id

    @property
    def country(self) -> str:
        return self.opened.country

    @property
    def is_open(self) -> bool:
        return self.status is WaveStatus.OPEN

    def close_enrolment(self, actor: Actor) -> None:
        if self.status is not WaveStatus.OPEN:
            raise InvalidState(f"Wave {self.id} is {self.status}: only an open wave closes its enrolment.")
        self.record(
            WaveEnrolmentClosed(wave_id=self.id, programme_id=self.programme_id, country=self.country, actor=actor)
        )

    def end(self, actor: Actor) -> None:
        if self.status is WaveStatus.OPEN:
            raise InvalidState(f"Wave {self.id} is still open: close its enrolment before ending it.")
        if self.status is WaveStatus.ENDED:
            raise InvalidState(f"Wave {self.id} has ended already.")
        self.record(WaveEnded(wave_id=self.id, programme_id=self.programme_id, country=self.country, actor=actor))

    def close_on_schedule(self, today: date, actor: Actor) -> bool:
        """What the wave's calendar asks on ``today`` (UTC): enrolment closes
        when its closing day has come, the wave ends once its last day is
        over (closing enrolment first). True if anything changed."""
        changed = False
        closes_on = self.opened.enrolment_closes_on
        over = today > self.opened.ends_on
        if self.status is WaveStatus.OPEN and (over or (closes_on is not None and today >= closes_on)):
            self.close_enrolment(actor)
            changed = True
        if over and self.status is WaveStatus.ENROLMENT_CLOSED:
            self.end(actor)
            changed = True
        return changed

    def require_not_ended(self) -> None:
        if self.status is WaveStatus.ENDED:
            raise InvalidState(f"Wave {self.id} has ended: its participants can no longer change.")

    # -- state ------------------------------------------------------------------------

    def _on_WaveOpened(self, event: WaveOpened) -> None:
        self.id, self.opened, self.status = event.wave_id, event, WaveStatus.OPEN

    def _on_WaveEnrolmentClosed(self, event: WaveEnrolmentClosed) -> None:
        self.status = WaveStatus.ENROLMENT_CLOSED

    def _on_WaveEnded(self, event: WaveEnded) -> None:
        self.status = WaveStatus.ENDED
