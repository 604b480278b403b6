"""Programme rules: settings checked as a whole, changes recorded as facts."""

from __future__ import annotations

import uuid

import pytest

from libs.events.contexts.enrollment import (
    NeedsQuestion,
    ProgrammeCreated,
    ProgrammeMode,
    ProgrammeSettingsChanged,
    QualificationScores,
    SeniorityRule,
    Theme,
)
from services.enrollment.domain.errors import InvalidInput
from services.enrollment.domain.programme import Programme
from services.enrollment.domain.values import DEFAULT_THEMES, default_settings
from services.enrollment.domain.wave import Wave
from tests.support.enrollment_domain import ACTOR, ORG, programme


def fields(exc: pytest.ExceptionInfo[InvalidInput]) -> list[str]:
    return [issue.field for issue in exc.value.issues]


def test_create_records_the_fact_with_its_actor_and_default_settings() -> None:
    created = Programme.create(
        programme_id=uuid.uuid4(),
        organisation=ORG,
        name="Reverse",
        mode=ProgrammeMode.REVERSE,
        settings=default_settings(ProgrammeMode.REVERSE),
        actor=ACTOR,
    )
    [event] = created.take_pending()
    assert isinstance(event, ProgrammeCreated)
    assert event.actor == ACTOR and event.mode is ProgrammeMode.REVERSE
    assert [t.code for t in event.settings.themes] == [t.code for t in DEFAULT_THEMES]
    assert len(event.settings.needs_questions) == 2
    assert event.settings.seniority_rule.enforced  # reverse: mentors are not senior to mentees
    assert created.version == 1 and created.expected_version == 1


def test_mutual_defaults_have_no_seniority_rule() -> None:
    assert not default_settings(ProgrammeMode.MUTUAL).seniority_rule.enforced


def test_rebuild_from_events_gives_the_same_state() -> None:
    original = programme()
    original.change_settings({"languages": ["en", "de"]}, ACTOR)
    events = original.take_pending()
    rebuilt = Programme.rebuild(ORG, events)
    assert rebuilt is not None
    assert rebuilt.settings == original.settings and rebuilt.version == 2 and rebuilt.expected_version == 2


def test_rebuild_refuses_another_aggregates_stream() -> None:
    events = programme().take_pending()
    assert Wave.rebuild(ORG, events) is None
    assert Programme.rebuild(ORG, []) is None


@pytest.mark.parametrize("count", [0, 1, 4])
def test_needs_questionnaire_has_two_or_three_questions(count: int) -> None:
    questions = [NeedsQuestion(question_id=f"q{i}", text="?").model_dump() for i in range(count)]
    with pytest.raises(InvalidInput) as exc:
        programme().change_settings({"needs_questions": questions}, ACTOR)
    assert fields(exc) == ["needs_questions"]


def test_three_questions_with_theme_options_from_the_catalogue() -> None:
    subject = programme()
    subject.take_pending()
    questions = [
        {"question_id": "q1", "text": "?", "theme_options": ["data_ai", "cybersecurity"]},
        {"question_id": "q2", "text": "?"},
        {"question_id": "q3", "text": "?"},
    ]
    subject.change_settings({"needs_questions": questions}, ACTOR)
    [event] = subject.take_pending()
    assert isinstance(event, ProgrammeSettingsChanged) and event.changed == ["needs_questions"]
    assert [q.question_id for q in subject.settings.needs_questions] == ["q1", "q2", "q3"]


def test_question_options_must_be_in_the_catalogue_and_ids_unique() -> None:
    questions = [
        {"question_id": "q1", "text": "?", "theme_options": ["cooking"]},
        {"question_id": "q1", "text": "?"},
    ]
    with pytest.raises(InvalidInput) as exc:
        programme().change_settings({"needs_questions": questions}, ACTOR)
    assert sorted(fields(exc)) == ["needs_questions", "needs_questions.0.theme_options"]


def test_catalogue_needs_a_theme_and_no_duplicates() -> None:
    with pytest.raises(InvalidInput) as exc:
        programme().change_settings({"themes": []}, ACTOR)
    assert "themes" in fields(exc)
    twice = [Theme(code="data_ai", label="A").model_dump(), Theme(code="data_ai", label="B").model_dump()]
    with pytest.raises(InvalidInput) as exc:
        programme().change_settings({"themes": twice}, ACTOR)
    assert fields(exc) == ["themes"]


def test_removing_a_theme_used_by_a_question_is_refused() -> None:
    subject = programme(
        needs_questions=[
            {"question_id": "q1", "text": "?", "theme_options": ["e_commerce"]},
            {"question_id": "q2", "text": "?"},
        ]
    )
    with pytest.raises(InvalidInput) as exc:
        subject.change_settings({"themes": [{"code": "data_ai", "label": "Data"}]}, ACTOR)
    assert fields(exc) == ["needs_questions.0.theme_options"]


def test_mutual_programmes_refuse_a_seniority_rule() -> None:
    subject = programme(ProgrammeMode.MUTUAL)
    with pytest.raises(InvalidInput) as exc:
        subject.change_settings({"seniority_rule": SeniorityRule(enforced=True, min_level_gap=0).model_dump()}, ACTOR)
    assert fields(exc) == ["seniority_rule.enforced"]


def test_matching_weights_need_one_positive_weight_and_stay_in_range() -> None:
    subject = programme()
    weights = dict.fromkeys(subject.settings.matching.weights.model_dump(), 0.0)
    matching = {**subject.settings.matching.model_dump(), "weights": weights}
    with pytest.raises(InvalidInput) as exc:
        subject.change_settings({"matching": matching}, ACTOR)
    assert fields(exc) == ["matching.weights"]
    matching["weights"] = {**weights, "theme_fit": 101}
    with pytest.raises(InvalidInput) as exc:
        subject.change_settings({"matching": matching}, ACTOR)
    assert fields(exc) == ["matching.weights.theme_fit"]


def test_every_broken_rule_is_reported_at_once() -> None:
    rule = {
        "min_case_study_score": 150,
        "min_teaching_ease": 0,
        "min_interpersonal_skills": 9,
        "training_required": True,
    }
    with pytest.raises(InvalidInput) as exc:
        programme().change_settings({"qualification_rule": rule, "languages": []}, ACTOR)
    assert sorted(fields(exc)) == [
        "languages",
        "qualification_rule.min_case_study_score",
        "qualification_rule.min_interpersonal_skills",
        "qualification_rule.min_teaching_ease",
    ]


def test_an_unchanged_setting_records_nothing() -> None:
    subject = programme()
    subject.take_pending()
    subject.change_settings({"languages": list(subject.settings.languages)}, ACTOR)
    assert subject.pending == []


def test_change_names_what_changed_and_carries_the_whole_settings() -> None:
    subject = programme()
    subject.take_pending()
    weights = {**subject.settings.matching.weights.model_dump(), "theme_fit": 50}
    subject.change_settings(
        {"languages": ["en"], "matching": {**subject.settings.matching.model_dump(), "weights": weights}}, ACTOR
    )
    [event] = subject.take_pending()
    assert isinstance(event, ProgrammeSettingsChanged)
    assert event.changed == ["languages", "matching"]
    assert event.settings.matching.weights.theme_fit == 50 and event.settings.themes == subject.settings.themes


@pytest.mark.parametrize(
    ("scores", "training_required", "qualified"),
    [
        ((60, 3, 3, True), True, True),
        ((59, 5, 5, True), True, False),
        ((90, 2, 5, True), True, False),
        ((90, 5, 2, True), True, False),
        ((90, 5, 5, False), True, False),
        ((90, 5, 5, False), False, True),
    ],
)
def test_the_programme_says_what_qualified_means(
    scores: tuple[int, int, int, bool], training_required: bool, qualified: bool
) -> None:
    rule = {
        **default_settings(ProgrammeMode.REVERSE).qualification_rule.model_dump(),
        "training_required": training_required,
    }
    subject = programme(qualification_rule=rule)
    case, ease, skills, training = scores
    assert (
        subject.qualifies(
            QualificationScores(
                case_study_score=case, teaching_ease=ease, interpersonal_skills=skills, training_completed=training
            )
        )
        is qualified
    )
