"""Wave lifecycle: open -> enrolment closed -> ended."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from libs.events.contexts.enrollment import WaveEnded, WaveEnrolmentClosed, WaveOpened
from services.enrollment.domain.errors import InvalidInput, InvalidState
from services.enrollment.domain.values import WaveStatus
from services.enrollment.domain.wave import Wave, WavePlan
from tests.support.enrollment_domain import ACTOR, ORG, programme, wave


def test_open_records_the_wave_in_its_country() -> None:
    owner = programme()
    opened = wave(owner, "DE")
    [event] = opened.take_pending()
    assert isinstance(event, WaveOpened)
    assert (event.programme_id, event.country, event.actor) == (owner.id, "DE", ACTOR)
    assert opened.status is WaveStatus.OPEN and opened.country == "DE" and opened.organisation == ORG


def test_lifecycle_goes_forward_only() -> None:
    subject = wave(programme())
    subject.close_enrolment(ACTOR)
    with pytest.raises(InvalidState, match="only an open wave"):
        subject.close_enrolment(ACTOR)
    subject.end(ACTOR)
    with pytest.raises(InvalidState, match="ended already"):
        subject.end(ACTOR)
    with pytest.raises(InvalidState):
        subject.close_enrolment(ACTOR)
    assert [type(e) for e in subject.take_pending()] == [WaveOpened, WaveEnrolmentClosed, WaveEnded]


def test_an_open_wave_closes_its_enrolment_before_it_ends() -> None:
    subject = wave(programme())
    with pytest.raises(InvalidState, match="close its enrolment"):
        subject.end(ACTOR)


def test_rebuilt_wave_keeps_its_status_and_version() -> None:
    subject = wave(programme())
    subject.close_enrolment(ACTOR)
    rebuilt = Wave.rebuild(ORG, subject.take_pending())
    assert rebuilt is not None and rebuilt.status is WaveStatus.ENROLMENT_CLOSED and rebuilt.version == 2


def test_dates_target_and_country_are_checked_together() -> None:
    with pytest.raises(InvalidInput) as exc:
        plan = WavePlan("W", "Europe", "fr", "c", date(2026, 6, 1), date(2026, 6, 1), 0)
        Wave.open(wave_id=uuid.uuid4(), programme=programme(), plan=plan, actor=ACTOR)
    assert sorted(i.field for i in exc.value.issues) == ["country", "ends_on", "target_pairs"]


# -- the wave calendar (issue 19) ------------------------------------------------------


def calendar_wave(closes_on: date | None) -> Wave:
    plan = WavePlan("W", "Europe", "FR", "c", date(2026, 3, 1), date(2026, 6, 30), 5, enrolment_closes_on=closes_on)
    subject = Wave.open(wave_id=uuid.uuid4(), programme=programme(), plan=plan, actor=ACTOR)
    subject.take_pending()
    return subject


def test_enrolment_closes_when_its_day_begins() -> None:
    subject = calendar_wave(date(2026, 3, 10))
    assert not subject.close_on_schedule(date(2026, 3, 9), ACTOR) and subject.status is WaveStatus.OPEN
    assert subject.close_on_schedule(date(2026, 3, 10), ACTOR) and subject.status is WaveStatus.ENROLMENT_CLOSED
    assert not subject.close_on_schedule(date(2026, 3, 11), ACTOR)  # nothing more until the end
    assert [type(e) for e in subject.take_pending()] == [WaveEnrolmentClosed]


def test_a_wave_ends_once_its_last_day_is_over_closing_enrolment_first() -> None:
    subject = calendar_wave(None)
    assert not subject.close_on_schedule(date(2026, 6, 30), ACTOR)  # the last day is still a wave day
    assert subject.close_on_schedule(date(2026, 7, 1), ACTOR) and subject.status is WaveStatus.ENDED
    assert [type(e) for e in subject.take_pending()] == [WaveEnrolmentClosed, WaveEnded]
    assert not subject.close_on_schedule(date(2026, 7, 2), ACTOR)


def test_enrolment_cannot_close_after_the_wave_ends() -> None:
    with pytest.raises(InvalidInput) as exc:
        plan = WavePlan("W", "Europe", "FR", "c", date(2026, 3, 1), date(2026, 6, 30), 5, date(2026, 7, 1))
        Wave.open(wave_id=uuid.uuid4(), programme=programme(), plan=plan, actor=ACTOR)
    assert [i.field for i in exc.value.issues] == ["enrolment_closes_on"]
