"""The mentor time budget, check-ins and a programme's session rules, without
any server."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from libs.events.contexts.sessions import CheckInRecorded, Member, MentorBudgetExceeded, MentorTimeLogged
from services.sessions.domain.budget import MentorMonth, budget_stream
from services.sessions.domain.check_in import CheckIn
from services.sessions.domain.errors import InvalidInput, InvalidState
from services.sessions.domain.settings import ProgrammeRules
from services.sessions.domain.values import (
    DEFAULT_RULES,
    PairStatus,
    SessionRules,
    month_of,
    monthly_budget_minutes,
)
from tests.support.sessions_domain import ACTOR, make_pair


@pytest.mark.parametrize(
    ("share", "hours", "minutes"),
    [(5, 40, 520), (6, 40, 624), (5, 35, 455), (5.5, 38, 543), (100, 40, 10400)],
)
def test_monthly_budget_is_a_share_of_52_12_working_weeks(share: float, hours: float, minutes: int) -> None:
    assert monthly_budget_minutes(share, hours) == minutes


def test_default_rules_are_five_percent_of_forty_hours_and_a_day_of_notice() -> None:
    assert DEFAULT_RULES.monthly_budget_minutes == 520 and DEFAULT_RULES.late_cancellation_hours == 24


def test_the_budget_month_is_the_utc_calendar_month() -> None:
    late_evening_in_sao_paulo = datetime(2026, 3, 31, 22, 30, tzinfo=timezone(timedelta(hours=-3)))
    assert month_of(late_evening_in_sao_paulo) == date(2026, 4, 1)
    assert month_of(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == date(2026, 12, 1)


def month() -> MentorMonth:
    return MentorMonth.start(
        organisation="org-a", mentor_id=uuid.uuid4(), programme_id=uuid.uuid4(), country="DE", month=date(2026, 3, 1)
    )


def log(mentor_month: MentorMonth, session: int, preparation: int, budget: int = 120) -> list:
    mentor_month.log(
        pair_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        session_minutes=session,
        preparation_minutes=preparation,
        budget_minutes=budget,
        actor=ACTOR,
    )
    return mentor_month.take_pending()


def test_time_adds_up_and_reaching_the_budget_exactly_is_within_it() -> None:
    mentor_month = month()
    [first] = log(mentor_month, 45, 15)
    [second] = log(mentor_month, 50, 10)
    assert isinstance(second, MentorTimeLogged)
    assert (first.minutes, first.total_minutes, second.total_minutes) == (60, 60, 120)
    assert (second.session_minutes, second.preparation_minutes) == (50, 10)
    assert not mentor_month.over_budget and mentor_month.stream_id.endswith(":2026-03")


def test_crossing_the_budget_is_recorded_once_by_the_entry_that_crossed_it() -> None:
    mentor_month = month()
    log(mentor_month, 60, 30)
    logged, exceeded = log(mentor_month, 30, 1)
    assert isinstance(exceeded, MentorBudgetExceeded)
    assert (exceeded.total_minutes, exceeded.budget_minutes) == (121, 120)
    assert [type(e) for e in log(mentor_month, 30, 0)] == [MentorTimeLogged]  # still over: said once
    assert mentor_month.over_budget


def test_a_month_rebuilt_from_its_stream_continues_where_it_was() -> None:
    mentor_month = month()
    events = log(mentor_month, 60, 30) + log(mentor_month, 60, 0)
    rebuilt = MentorMonth.rebuild("org-a", events)
    assert rebuilt is not None and rebuilt.over_budget and rebuilt.total_minutes == 150 and rebuilt.version == 3
    assert rebuilt.stream_id == budget_stream(mentor_month.facts["mentor_id"], date(2026, 3, 1))
    assert [type(e) for e in log(rebuilt, 10, 0)] == [MentorTimeLogged]


# --------------------------------------------------------------------------- check-ins


def check_in(**overrides) -> CheckIn:
    args = dict(
        check_in_id=uuid.uuid4(), pair=make_pair(), member=Member.MENTEE, mood=4, blockers=None, next_step="demo"
    )
    return CheckIn.record_for(**{**args, **overrides}, actor=ACTOR)


def test_a_member_checks_in_on_a_formed_pair_with_a_mood_from_1_to_5() -> None:
    [event] = check_in(mood=5).take_pending()
    assert isinstance(event, CheckInRecorded) and event.mood == 5 and event.member is Member.MENTEE
    for mood in (0, 6):
        with pytest.raises(InvalidInput, match="mood"):
            check_in(mood=mood)
    with pytest.raises(InvalidInput, match="member"):
        check_in(member=Member.HR)
    with pytest.raises(InvalidState, match="dissolved"):
        check_in(pair=make_pair(PairStatus.DISSOLVED))


# --------------------------------------------------------------------------- programme rules


def test_rules_start_from_the_defaults_and_record_only_changes() -> None:
    programme_id = uuid.uuid4()
    rules = ProgrammeRules.defaults("org-a", programme_id)
    rules.change(DEFAULT_RULES, ACTOR)  # the first setting is recorded, even at the defaults
    rules.change(SessionRules(6, 40, 48), ACTOR)
    rules.change(SessionRules(6, 40, 48), ACTOR)  # again: nothing new
    first, second = rules.take_pending()
    assert (first.monthly_budget_minutes, second.monthly_budget_minutes) == (520, 624)
    assert second.late_cancellation_hours == 48 and rules.stream_id == str(programme_id)
    rebuilt = ProgrammeRules.rebuild("org-a", [first, second])
    assert rebuilt is not None and rebuilt.rules == SessionRules(6, 40, 48)
