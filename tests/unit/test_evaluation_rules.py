"""Evaluation's rules without any server: template validation, answers
against a template version, assignment triggers and an assignment's life."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from libs.events.contexts.enrollment import Actor
from libs.events.contexts.evaluation import (
    ActionsCommitted,
    ActionStatus,
    AssignmentReminded,
    CancellationReason,
    Phase,
    Question,
    QuestionKind,
    QuestionOption,
    Respondent,
    SurveyAnswered,
    SurveyKind,
)
from services.evaluation.domain import assignments as rules
from services.evaluation.domain.answers import check_actions, check_answers
from services.evaluation.domain.defaults import default_template, untranslated
from services.evaluation.domain.errors import Conflict, InvalidInput
from services.evaluation.domain.templates import check_template

ACTOR = Actor(subject="p-1")
AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def fields(exc: pytest.ExceptionInfo[InvalidInput]) -> list[str]:
    return sorted(issue.field for issue in exc.value.issues)


def scale(qid: str = "q1", required: bool = True, **text: str) -> Question:
    return Question(question_id=qid, kind=QuestionKind.SCALE, text=text or {"en": "Q", "fr": "Q"}, required=required)


def choice(qid: str, kind: QuestionKind = QuestionKind.SINGLE_CHOICE, required: bool = True) -> Question:
    options = [QuestionOption(code=c, text={"en": c, "fr": c}) for c in ("a", "b", "c")]
    return Question(question_id=qid, kind=kind, text={"en": "Q", "fr": "Q"}, required=required, options=options)


# --------------------------------------------------------------------------- templates


def test_a_template_missing_a_language_names_each_missing_text() -> None:
    questions = [scale("q1", en="Q only in English"), choice("q2")]
    with pytest.raises(InvalidInput) as exc:
        check_template(SurveyKind.DIGITAL_MATURITY, ["en", "fr", "de"], {"en": "T", "fr": "T"}, questions)
    assert fields(exc) == [
        "questions.0.text.de",
        "questions.0.text.fr",
        "questions.1.options.0.text.de",
        "questions.1.options.1.text.de",
        "questions.1.options.2.text.de",
        "questions.1.text.de",
        "title.de",
    ]


def test_template_structure_rules() -> None:
    bad_choice = Question(
        question_id="q2", kind=QuestionKind.MULTIPLE_CHOICE, text={"en": "Q"},
        options=[QuestionOption(code="a", text={"en": "A"})],
    )
    free_with_options = Question(
        question_id="Bad Id", kind=QuestionKind.FREE_TEXT, text={"en": "Q"},
        options=[QuestionOption(code="a", text={"en": "A"})],
    )
    with pytest.raises(InvalidInput) as exc:
        check_template(SurveyKind.SESSION_FEEDBACK, ["en"], {"en": "T", "xx": "?"}, [bad_choice, free_with_options])
    assert fields(exc) == ["questions.0.options", "questions.1.options", "questions.1.question_id", "title.xx"]


def test_a_maturity_template_needs_a_scale_question_and_unique_ids() -> None:
    with pytest.raises(InvalidInput) as exc:
        check_template(SurveyKind.DIGITAL_MATURITY, ["en", "fr"], {"en": "T", "fr": "T"}, [choice("q"), choice("q")])
    messages = [issue.message for issue in exc.value.issues]
    assert any("scale question" in m for m in messages) and any("used twice" in m for m in messages)


@pytest.mark.parametrize("kind", list(SurveyKind))
def test_every_default_template_is_valid_in_the_programme_languages(kind: SurveyKind) -> None:
    title, questions = default_template(kind, ["fr", "en", "de"])
    check_template(kind, ["fr", "en", "de"], title, questions)
    assert title["fr"] != title["en"] and title["de"] == title["en"]  # English stands in for German
    assert untranslated(["fr", "en", "de"]) == ["de"]


# --------------------------------------------------------------------------- answers


QUESTIONS = [
    scale("useful"),
    choice("covered"),
    choice("themes", QuestionKind.MULTIPLE_CHOICE, required=False),
    Question(question_id="comment", kind=QuestionKind.FREE_TEXT, text={"en": "C"}, required=False),
]


def test_valid_answers_keep_free_text_apart() -> None:
    checked = check_answers(QUESTIONS, {"useful": 4, "covered": "b", "themes": ["c", "a"], "comment": " Great "})
    assert [(i.question_id, i.scale, i.options) for i in checked.items] == [
        ("useful", 4, []),
        ("covered", None, ["b"]),
        ("themes", None, ["a", "c"]),
    ]
    assert checked.free_text == {"comment": "Great"}


@pytest.mark.parametrize(
    ("answers", "wrong"),
    [
        ({"useful": 6, "covered": "a"}, ["answers.useful"]),
        ({"useful": 0, "covered": "a"}, ["answers.useful"]),
        ({"useful": True, "covered": "a"}, ["answers.useful"]),  # JSON true is not a 1
        ({"useful": "4", "covered": "a"}, ["answers.useful"]),
        ({"useful": 3, "covered": "z"}, ["answers.covered"]),
        ({"useful": 3, "covered": ["a"]}, ["answers.covered"]),
        ({"useful": 3, "covered": "a", "themes": ["a", "a"]}, ["answers.themes"]),
        ({"useful": 3, "covered": "a", "themes": ["zz"]}, ["answers.themes"]),
        ({"useful": 3, "covered": "a", "comment": 12}, ["answers.comment"]),
        ({"covered": "a"}, ["answers.useful"]),  # required
        ({"useful": 3, "covered": "a", "extra": 1}, ["answers.extra"]),
        ({}, ["answers.covered", "answers.useful"]),
    ],
)
def test_invalid_answers_name_the_question(answers: dict, wrong: list[str]) -> None:
    with pytest.raises(InvalidInput) as exc:
        check_answers(QUESTIONS, answers)
    assert fields(exc) == wrong


def test_actions_need_a_description() -> None:
    assert check_actions([(" Pilot a data project ", ActionStatus.STARTED)]) == [
        ("Pilot a data project", ActionStatus.STARTED)
    ]
    with pytest.raises(InvalidInput) as exc:
        check_actions([("ok", ActionStatus.PLANNED), ("  ", ActionStatus.PLANNED)])
    assert fields(exc) == ["actions.1.description"]


# --------------------------------------------------------------------------- triggers


PAIR = rules.Pair(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "FR", uuid.uuid4(), uuid.uuid4())


def test_a_formed_pair_gets_the_mentees_pre_questionnaire() -> None:
    (plan,) = rules.on_pair_formed(PAIR, AT)
    assert (plan.kind, plan.phase, plan.respondent, plan.participant_id) == (
        SurveyKind.DIGITAL_MATURITY, Phase.PRE, Respondent.MENTEE, PAIR.mentee_id,
    )
    assert plan.due_at == AT + timedelta(days=14)


def test_a_held_session_gets_feedback_from_both() -> None:
    session = uuid.uuid4()
    plans = rules.on_session_held(PAIR, session, AT)
    assert {(p.participant_id, p.kind, p.session_id) for p in plans} == {
        (PAIR.mentee_id, SurveyKind.SESSION_FEEDBACK, session),
        (PAIR.mentor_id, SurveyKind.SESSION_FEEDBACK, session),
    }
    assert {p.due_at for p in plans} == {AT + timedelta(days=7)}


def test_a_completed_pair_gets_post_closing_and_mentor_questionnaires() -> None:
    plans = rules.on_pair_completed(PAIR, AT)
    assert {(p.kind, p.phase, p.participant_id) for p in plans} == {
        (SurveyKind.DIGITAL_MATURITY, Phase.POST, PAIR.mentee_id),
        (SurveyKind.CLOSING_SELF_ASSESSMENT, Phase.CLOSING, PAIR.mentee_id),
        (SurveyKind.MENTOR_QUESTIONNAIRE, Phase.CLOSING, PAIR.mentor_id),
    }


def test_a_trigger_handled_twice_makes_the_same_assignment() -> None:
    trigger = uuid.uuid4()
    (plan,) = rules.on_pair_formed(PAIR, AT)
    first = rules.assign(plan, PAIR, uuid.uuid4(), 1, trigger, ACTOR)
    again = rules.assign(plan, PAIR, uuid.uuid4(), 1, trigger, ACTOR)
    other = rules.assign(plan, PAIR, uuid.uuid4(), 1, uuid.uuid4(), ACTOR)
    assert first.assignment_id == again.assignment_id != other.assignment_id


# --------------------------------------------------------------------------- an assignment's life


def assignment(kind: SurveyKind = SurveyKind.SESSION_FEEDBACK) -> rules.Assignment:
    plan = rules.Plan(kind, Phase.CLOSING, Respondent.MENTEE, PAIR.mentee_id, AT + timedelta(days=7))
    return rules.Assignment("org-a", rules.assign(plan, PAIR, uuid.uuid4(), 1, uuid.uuid4(), ACTOR))


def test_an_assignment_is_answered_once() -> None:
    open_ = assignment()
    checked = check_answers(QUESTIONS, {"useful": 5, "covered": "a"})
    events = open_.answer(checked, None, ACTOR)
    assert [type(e) for e in events] == [SurveyAnswered]
    answered = rules.Assignment.from_events("org-a", [open_.assigned, *events])
    assert (answered.status, answered.version) == ("answered", 2)
    with pytest.raises(Conflict):
        answered.answer(checked, None, ACTOR)


def test_committed_actions_only_at_closing_and_counted() -> None:
    checked = check_answers(QUESTIONS, {"useful": 5, "covered": "a"})
    with pytest.raises(InvalidInput) as exc:
        assignment().answer(checked, [("x", ActionStatus.STARTED)], ACTOR)
    assert fields(exc) == ["actions"]
    actions = [("a", ActionStatus.STARTED), ("b", ActionStatus.PLANNED), ("c", ActionStatus.PLANNED)]
    events = assignment(SurveyKind.CLOSING_SELF_ASSESSMENT).answer(checked, actions, ACTOR)
    committed = events[1]
    assert isinstance(committed, ActionsCommitted)
    assert (committed.started, committed.planned, committed.descriptions) == (1, 2, ["a", "b", "c"])


def test_reminders_only_when_overdue_and_at_most_weekly() -> None:
    open_ = assignment()
    due = open_.assigned.due_at
    assert open_.remind(due, ACTOR) == []  # due, not yet overdue
    (first,) = open_.remind(due + timedelta(hours=1), ACTOR)
    assert isinstance(first, AssignmentReminded) and first.reminder == 1
    reminded = rules.Assignment.from_events("org-a", [open_.assigned, first])
    assert reminded.remind(due + timedelta(days=3), ACTOR) == []
    (second,) = reminded.remind(due + timedelta(days=8), ACTOR)
    assert second.reminder == 2


def test_cancelling_closes_an_open_assignment_only() -> None:
    open_ = assignment()
    (cancelled,) = open_.cancel(CancellationReason.PAIR_DISSOLVED, ACTOR)
    closed = rules.Assignment.from_events("org-a", [open_.assigned, cancelled])
    assert closed.cancel(CancellationReason.PAIR_DISSOLVED, ACTOR) == []
    assert not closed.is_overdue(AT + timedelta(days=30))
    with pytest.raises(Conflict):
        closed.ensure_open()
