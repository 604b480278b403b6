"""The session's rules, without any server: durations, the past, topics, the
pair's status, overlaps, and the life cycle's legal transitions."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from libs.events.contexts.sessions import (
    Member,
    SessionCancelled,
    SessionHeld,
    SessionMoved,
    SessionNoShow,
    SessionScheduled,
)
from services.sessions.domain.errors import InvalidInput, InvalidState, TimeTaken
from services.sessions.domain.session import Session, first_clash
from services.sessions.domain.values import Busy, PairStatus, SessionStatus, Slot
from tests.support.sessions_domain import ACTOR, NOW, THEMES, in_hours, make_pair, scheduled


def fields(exc: pytest.ExceptionInfo[InvalidInput]) -> list[str]:
    return sorted(i.field for i in exc.value.issues)


# --------------------------------------------------------------------------- slots and overlaps


def test_slots_are_half_open_so_back_to_back_sessions_do_not_overlap() -> None:
    first = in_hours(10, 60)
    assert not first.overlaps(Slot(first.ends_at, 30))
    assert not Slot(first.starts_at - timedelta(minutes=30), 30).overlaps(first)
    assert first.overlaps(Slot(first.ends_at - timedelta(minutes=1), 30))
    assert first.overlaps(Slot(first.starts_at + timedelta(minutes=10), 15))  # inside
    assert Slot(first.starts_at - timedelta(hours=1), 180).overlaps(first)  # around


def test_first_clash_is_the_earliest_overlap_and_ignores_the_session_itself() -> None:
    person, own = uuid.uuid4(), uuid.uuid4()
    later = Busy(uuid.uuid4(), person, in_hours(10.5, 60))
    earlier = Busy(uuid.uuid4(), person, in_hours(9.5, 60))
    apart = Busy(uuid.uuid4(), person, in_hours(20, 60))
    assert first_clash(in_hours(10, 60), [later, apart, earlier]) == earlier
    assert first_clash(in_hours(10, 60), [Busy(own, person, in_hours(10, 60))], ignore=own) is None
    assert first_clash(in_hours(10, 60), [apart]) is None


# --------------------------------------------------------------------------- scheduling


def test_schedule_records_the_pair_facts_and_the_slot() -> None:
    pair = make_pair()
    session = scheduled(pair, in_hours(24, 45), topics=("data_ai",))
    [event] = session.take_pending()
    assert isinstance(event, SessionScheduled)
    assert (event.pair_id, event.mentee_id, event.mentor_id, event.country) == (
        pair.pair_id,
        pair.mentee_id,
        pair.mentor_id,
        "FR",
    )
    assert event.starts_at == NOW + timedelta(hours=24) and event.duration_minutes == 45
    assert event.planned_topics == ["data_ai"] and event.scheduled_by is Member.MENTEE
    assert session.status is SessionStatus.SCHEDULED and session.version == 1


@pytest.mark.parametrize(("minutes", "ok"), [(14, False), (15, True), (120, True), (121, False)])
def test_duration_bounds(minutes: int, ok: bool) -> None:
    if ok:
        assert scheduled(slot=in_hours(5, minutes)).slot.minutes == minutes
    else:
        with pytest.raises(InvalidInput) as exc:
            scheduled(slot=in_hours(5, minutes))
        assert fields(exc) == ["duration_minutes"]


@pytest.mark.parametrize("hours", [-1, 0])
def test_never_scheduled_in_the_past_or_now(hours: float) -> None:
    with pytest.raises(InvalidInput) as exc:
        scheduled(slot=in_hours(hours))
    assert fields(exc) == ["starts_at"]


def test_every_wrong_field_is_named_at_once() -> None:
    with pytest.raises(InvalidInput) as exc:
        scheduled(slot=in_hours(-2, 200), topics=("data_ai", "astrology"))
    assert fields(exc) == ["duration_minutes", "planned_topics.1", "starts_at"]


def test_topics_come_from_the_programme_once_each() -> None:
    with pytest.raises(InvalidInput) as exc:
        scheduled(topics=("data_ai", "data_ai"))
    assert fields(exc) == ["planned_topics"]
    with pytest.raises(InvalidState, match="themes are not known"):
        scheduled(topics=("data_ai",), themes=None)
    assert scheduled(themes=None).status is SessionStatus.SCHEDULED  # no topics: nothing to check


@pytest.mark.parametrize("status", [PairStatus.DISSOLVED, PairStatus.COMPLETED])
def test_only_a_formed_pair_meets(status: PairStatus) -> None:
    with pytest.raises(InvalidState, match=status.value):
        scheduled(make_pair(status))


def test_an_overlap_with_either_person_is_refused_naming_who_and_what() -> None:
    pair = make_pair()
    other = uuid.uuid4()
    busy = (Busy(other, pair.mentor_id, in_hours(48.5, 60)),)
    with pytest.raises(TimeTaken) as exc:
        scheduled(pair, in_hours(48, 60), busy=busy)
    assert (exc.value.participant_id, exc.value.session_id) == (pair.mentor_id, other)
    assert scheduled(pair, in_hours(49.5, 30), busy=busy).status is SessionStatus.SCHEDULED  # right after


# --------------------------------------------------------------------------- life cycle


def test_move_keeps_the_previous_time_and_may_overlap_only_itself() -> None:
    pair = make_pair()
    session = scheduled(pair, in_hours(48, 60))
    itself = Busy(session.session_id, pair.mentee_id, session.slot)
    session.move(pair=pair, by=Member.MENTOR, slot=in_hours(48.5, 90), busy=[itself], now=NOW, actor=ACTOR)
    moved = session.take_pending()[-1]
    assert isinstance(moved, SessionMoved)
    assert moved.previous_starts_at == NOW + timedelta(hours=48) and moved.duration_minutes == 90
    with pytest.raises(TimeTaken):
        other = Busy(uuid.uuid4(), pair.mentee_id, in_hours(72, 60))
        session.move(pair=pair, by=Member.MENTOR, slot=in_hours(72, 30), busy=[other], now=NOW, actor=ACTOR)
    with pytest.raises(InvalidInput):
        session.move(pair=pair, by=Member.MENTOR, slot=in_hours(-3), busy=[], now=NOW, actor=ACTOR)
    dissolved = make_pair(PairStatus.DISSOLVED)
    with pytest.raises(InvalidState):
        session.move(pair=dissolved, by=Member.HR, slot=in_hours(90), busy=[], now=NOW, actor=ACTOR)


@pytest.mark.parametrize(("hours_before", "late"), [(30, False), (24, False), (23.5, True), (-1, True)])
def test_cancellation_says_how_late_it_was(hours_before: float, late: bool) -> None:
    session = scheduled(slot=in_hours(48))
    now = session.slot.starts_at - timedelta(hours=hours_before)
    session.cancel(by=Member.MENTOR, reason="travel", late_threshold_hours=24, now=now, actor=ACTOR)
    cancelled = session.take_pending()[-1]
    assert isinstance(cancelled, SessionCancelled)
    assert cancelled.notice_hours == hours_before and cancelled.late is late
    assert session.status is SessionStatus.CANCELLED


def test_held_only_once_started_and_only_once() -> None:
    session = scheduled(slot=in_hours(48))
    started = session.slot.starts_at + timedelta(minutes=70)
    hold = dict(actual_minutes=55, preparation_minutes=20, note="good", themes=THEMES, sequence_in_pair=1, actor=ACTOR)
    with pytest.raises(InvalidState, match="not started"):
        session.hold(topics_covered=["data_ai"], now=NOW, **hold)
    with pytest.raises(InvalidInput) as exc:
        session.hold(topics_covered=["astrology"], now=started, **{**hold, "actual_minutes": 0})
    assert fields(exc) == ["actual_minutes", "topics_covered.0"]
    session.hold(topics_covered=["data_ai"], now=started, **hold)
    held = session.take_pending()[-1]
    assert isinstance(held, SessionHeld)
    assert held.held_at == session.slot.starts_at and held.preparation_minutes == 20
    for illegal in (
        lambda: session.hold(topics_covered=[], now=started, **hold),
        lambda: session.cancel(by=Member.HR, reason="x", late_threshold_hours=24, now=started, actor=ACTOR),
        lambda: session.no_show(absent=Member.MENTEE, reported_by=Member.MENTOR, now=started, actor=ACTOR),
        lambda: session.move(pair=make_pair(), by=Member.HR, slot=in_hours(90), busy=[], now=started, actor=ACTOR),
    ):
        with pytest.raises(InvalidState, match="held"):
            illegal()


def test_no_show_names_a_member_and_ends_the_session() -> None:
    session = scheduled(slot=in_hours(1))
    later = NOW + timedelta(hours=2)
    with pytest.raises(InvalidInput):
        session.no_show(absent=Member.HR, reported_by=Member.MENTOR, now=later, actor=ACTOR)
    session.no_show(absent=Member.MENTOR, reported_by=Member.MENTEE, now=later, actor=ACTOR)
    assert isinstance(session.take_pending()[-1], SessionNoShow) and session.status is SessionStatus.NO_SHOW
    with pytest.raises(InvalidState, match="no-show"):
        session.cancel(by=Member.HR, reason="x", late_threshold_hours=24, now=later, actor=ACTOR)


def test_a_session_rebuilt_from_its_events_has_the_same_state() -> None:
    pair = make_pair()
    session = scheduled(pair, in_hours(48))
    session.move(pair=pair, by=Member.MENTOR, slot=in_hours(50, 30), busy=[], now=NOW, actor=ACTOR)
    session.cancel(by=Member.MENTEE, reason="ill", late_threshold_hours=24, now=NOW, actor=ACTOR)
    events = session.take_pending()
    rebuilt = Session.rebuild("org-a", events)
    assert rebuilt is not None
    assert (rebuilt.status, rebuilt.slot, rebuilt.version) == (SessionStatus.CANCELLED, in_hours(50, 30), 3)
    assert Session.rebuild("org-a", events[1:]) is None  # not a session's stream
