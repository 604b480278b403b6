"""Enrollment's profiles and programme settings -> the matching domain."""

from __future__ import annotations

import uuid
from datetime import date

from libs.events.contexts.enrollment import ProgrammeMode
from services.enrollment.domain.values import default_settings
from services.matching.adapters.mapping import to_participant, to_policy, utc_offset_hours
from services.matching.domain import Criterion, Objective, Role


def profile(**overrides):
    return {
        "entity": "Acme France",
        "business_function": "finance",
        "job_level": 10,
        "tenure_years": 12,
        "generation_band": "gen_x",
        "languages": ["fr", "en"],
        "time_zone": "America/New_York",
        "learner_profile": "experiential",
        "intentions": ["understand_businesses", "own_code"],
        "themes_wanted": [{"theme": "data_ai", "level": 1}],
        "themes_offered": [{"theme": "cybersecurity", "level": 4}],
        "sessions_per_month": 2,
        "capacity": None,
        **overrides,
    }


def row(role: str, **overrides):
    return {
        "participant_id": uuid.uuid4(),
        "role": role,
        "country": "FR",
        "profile": profile(**overrides),
        "employee_ref": "E1",
        "manager_ref": "M1",
    }


def settings(**matching):
    s = default_settings(ProgrammeMode.REVERSE).model_dump(mode="json")
    s["matching"].update(matching)
    return s


def test_policy_takes_the_programmes_weights_and_objective() -> None:
    policy = to_policy("reverse", settings(objective="max_matched_then_score"))
    assert policy.objective is Objective.MAX_MATCHED_THEN_SCORE
    assert policy.weights[Criterion.THEMES] == 30 and policy.weights[Criterion.CROSS_ENTITY] == 10
    assert policy.weights[Criterion.GENERATION] == 0  # enrollment has no weight for it
    assert policy.language_hard is True
    assert policy.seniority_min_gap == 0


def test_request_objective_overrides_the_programmes() -> None:
    assert to_policy("reverse", settings(), "max_matched_then_score").objective is Objective.MAX_MATCHED_THEN_SCORE


def test_mutual_programmes_never_enforce_seniority() -> None:
    s = settings()
    s["seniority_rule"] = {"enforced": True, "min_level_gap": 2}
    assert to_policy("reverse", s).seniority_min_gap == 2
    assert to_policy("mutual", s).seniority_min_gap is None


def test_a_mentee_brings_its_wanted_themes_and_a_mentor_its_offered_ones() -> None:
    mentee = to_participant(row("mentee"), 0, date(2026, 1, 5))
    mentor = to_participant(row("mentor", capacity=3), 2, date(2026, 1, 5))
    assert mentee.role is Role.MENTEE and mentee.themes == (("data_ai", 1),)
    assert mentor.role is Role.MENTOR and mentor.themes == (("cybersecurity", 4),)
    assert mentor.capacity == 2  # the remaining seats given, not the profile's
    assert mentee.employee_ref == "E1" and mentee.manager_ref == "M1"
    assert mentee.generation == "gen_x" and mentee.function == "finance"


def test_enrollment_intention_codes_map_to_the_domain_table() -> None:
    mentee = to_participant(row("mentee"), 0, date(2026, 1, 5))
    assert mentee.intentions == frozenset({"understand_company_businesses", "own_code"})


def test_time_zone_offset_is_taken_on_the_waves_start_date() -> None:
    assert utc_offset_hours("America/New_York", date(2026, 1, 5)) == -5.0
    assert utc_offset_hours("America/New_York", date(2026, 7, 5)) == -4.0
    assert utc_offset_hours("Not/AZone", date(2026, 1, 5)) == 0.0
