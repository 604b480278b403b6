"""Pair-health rules: pure logic with an injected clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.insights.health.rules import HealthRules, MemberMood, PairFacts, Status, cadence_days, evaluate

FORMED = datetime(2026, 3, 2, tzinfo=UTC)
RULES = HealthRules()


def days(n: float) -> datetime:
    return FORMED + timedelta(days=n)


def codes(facts: PairFacts, now: datetime, rules: HealthRules = RULES) -> list[str]:
    return [r.code for r in evaluate(facts, rules, now).reasons]


def test_a_new_pair_is_healthy_until_its_first_session_is_late() -> None:
    facts = PairFacts("formed", FORMED)
    assert evaluate(facts, RULES, days(21)).status is Status.HEALTHY
    late = evaluate(facts, RULES, days(22))
    assert late.status is Status.AT_RISK and [r.code for r in late.reasons] == ["no_first_session"]
    assert late.reasons[0].at == days(21) and late.reasons[0].fact == "PairFormed"
    assert evaluate(facts, HealthRules(first_session_within_days=30), days(22)).status is Status.HEALTHY


def test_silence_is_measured_against_the_expected_cadence() -> None:
    monthly = PairFacts("formed", FORMED, sessions_per_month=1, first_held_at=days(1), last_held_at=days(1))
    assert cadence_days(RULES, monthly) == 30
    assert codes(monthly, days(1 + 45)) == []
    assert codes(monthly, days(1 + 46)) == ["overdue_session"]
    assert evaluate(monthly, RULES, days(1 + 91)).status is Status.DORMANT
    weekly = PairFacts("formed", FORMED, sessions_per_month=4, first_held_at=days(1), last_held_at=days(1))
    assert codes(weekly, days(1 + 12)) == ["overdue_session"]
    assert codes(weekly, days(1 + 12), HealthRules(cadence_days=30)) == []


def test_rates_count_only_from_enough_sessions() -> None:
    two = PairFacts("formed", FORMED, sessions_held=1, sessions_cancelled=1, first_held_at=days(1), last_held_at=days(1))
    assert codes(two, days(2)) == []  # 2 sessions < min_sessions_for_rates
    three = PairFacts("formed", FORMED, sessions_held=2, sessions_cancelled=1, no_shows=1,
                      first_held_at=days(1), last_held_at=days(3))
    assert codes(three, days(4)) == []  # 1 in 4 cancelled (<= 34 %), 1 in 4 missed (<= 25 %)
    assert codes(three, days(4), HealthRules(max_cancellation_rate=0.2)) == ["cancellations"]
    reason = next(r for r in evaluate(three, HealthRules(max_no_show_rate=0.2), days(4)).reasons if r.code == "no_shows")
    assert reason.values == {"count": 1, "sessions": 4, "rate": 0.25, "threshold": 0.2}


def test_mood_feedback_surveys_and_budget_name_their_facts() -> None:
    facts = PairFacts(
        "formed", FORMED, first_held_at=days(1), last_held_at=days(20),
        moods=(MemberMood("mentee", 2, days(10)), MemberMood("mentor", 5, days(9))),
        feedback_scores=(4.5, 4.5, 3.0), last_feedback_at=days(12),
        open_survey_due=(days(4), days(30)),
        budget_exceeded_month=date(2026, 3, 1), budget_exceeded_at=days(14),
    )
    verdict = evaluate(facts, RULES, days(25))
    assert [(r.code, r.fact) for r in verdict.reasons] == [
        ("mentor_over_budget", "MentorBudgetExceeded"),
        ("falling_feedback", "SurveyAnswered"),
        ("overdue_surveys", "SurveyAssigned"),
        ("low_mood", "CheckInRecorded"),
    ]  # newest first: days 14, 12, 11 (due 4 + 7 days of grace), 10
    assert verdict.newest_reason_at == days(14)
    # Two months later the budget overrun is history.
    assert "mentor_over_budget" not in codes(facts, datetime(2026, 5, 2, tzinfo=UTC))


def test_each_members_latest_mood_counts_and_names_the_member() -> None:
    """The mentor's later, happy check-in does not hide the mentee's low mood."""
    facts = PairFacts(
        "formed", FORMED, first_held_at=days(1), last_held_at=days(5),
        moods=(MemberMood("mentee", 1, days(6)), MemberMood("mentor", 5, days(6) + timedelta(minutes=1))),
    )
    [reason] = evaluate(facts, RULES, days(7)).reasons
    assert (reason.code, reason.at) == ("low_mood", days(6))
    assert reason.values == {"member": "mentee", "mood": 1, "threshold": 2}
    assert reason.detail == "The mentee's latest check-in mood is 1 of 5."
    both_low = PairFacts("formed", FORMED, first_held_at=days(1), last_held_at=days(5),
                         moods=(MemberMood("mentee", 2, days(6)), MemberMood("mentor", 1, days(4))))
    assert [r.values["member"] for r in evaluate(both_low, RULES, days(7)).reasons] == ["mentee", "mentor"]


def test_an_ended_pair_names_how_it_ended() -> None:
    dissolved = evaluate(PairFacts("dissolved", FORMED, ended_at=days(9), dissolution_reason="availability"), RULES, days(99))
    assert dissolved.status is Status.ENDED
    assert [(r.code, r.fact, r.at) for r in dissolved.reasons] == [("dissolved", "PairDissolved", days(9))]


def test_thresholds_are_checked() -> None:
    with pytest.raises(ValidationError) as error:
        HealthRules(max_cancellation_rate=2, unknown=1)
    assert {e["loc"][0] for e in error.value.errors()} == {"max_cancellation_rate", "unknown"}
