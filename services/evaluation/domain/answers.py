"""Answers checked against the template version assigned, and committed actions.

The request body maps question ids to values: a 1-5 integer for a scale
question, an option code for a single choice, a list of codes for a
multiple choice, a string for free text. Errors name ``answers.<question_id>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from libs.events.contexts.evaluation import (
    ActionStatus,
    AnswerItem,
    Question,
    QuestionKind,
)
from services.evaluation.domain.errors import Issues

SCALE = range(1, 6)
MAX_FREE_TEXT = 4000
MAX_ACTIONS = 20


@dataclass(frozen=True)
class CheckedAnswers:
    items: list[AnswerItem]  # scored and chosen answers
    free_text: dict[str, str]  # personal: never in aggregates


def _is_blank(value: Any) -> bool:
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def _item(problems: Issues, path: str, question: Question, value: Any) -> AnswerItem | str | None:
    """The answer to one question, or None after recording what is wrong."""
    kind = question.kind
    codes = {o.code for o in question.options}
    if kind is QuestionKind.SCALE:
        if isinstance(value, int) and not isinstance(value, bool) and value in SCALE:
            return AnswerItem(question_id=question.question_id, kind=kind, scale=value)
        problems.add(path, "An integer from 1 to 5.")
    elif kind is QuestionKind.SINGLE_CHOICE:
        if isinstance(value, str) and value in codes:
            return AnswerItem(question_id=question.question_id, kind=kind, options=[value])
        problems.add(path, f"One of the option codes: {', '.join(sorted(codes))}.")
    elif kind is QuestionKind.MULTIPLE_CHOICE:
        picked = value if isinstance(value, list) else None
        if picked is not None and all(isinstance(c, str) and c in codes for c in picked) and len(set(picked)) == len(
            picked
        ):
            return AnswerItem(question_id=question.question_id, kind=kind, options=sorted(picked))
        problems.add(path, f"A list of distinct option codes among: {', '.join(sorted(codes))}.")
    else:
        if isinstance(value, str) and len(value.strip()) <= MAX_FREE_TEXT:
            return value.strip()
        problems.add(path, f"Text of at most {MAX_FREE_TEXT} characters.")
    return None


def check_answers(questions: Sequence[Question], answers: Mapping[str, Any]) -> CheckedAnswers:
    """Every answer valid for its question, every required question answered,
    no unknown question; else ``InvalidInput`` naming each question."""
    problems = Issues()
    known = {q.question_id for q in questions}
    for question_id in sorted(set(answers) - known):
        problems.add(f"answers.{question_id}", "Not a question of this survey.")
    items: list[AnswerItem] = []
    free_text: dict[str, str] = {}
    for question in questions:
        path = f"answers.{question.question_id}"
        value = answers.get(question.question_id)
        if _is_blank(value):
            if question.required:
                problems.add(path, "This question requires an answer.")
            continue
        checked = _item(problems, path, question, value)
        if isinstance(checked, AnswerItem):
            items.append(checked)
        elif isinstance(checked, str):
            free_text[question.question_id] = checked
    problems.raise_if_any()
    return CheckedAnswers(items, free_text)


def check_actions(actions: Sequence[tuple[str, ActionStatus]]) -> list[tuple[str, ActionStatus]]:
    """The committed actions, each described (description, status)."""
    problems = Issues()
    if len(actions) > MAX_ACTIONS:
        problems.add("actions", f"At most {MAX_ACTIONS} actions.")
    for i, (description, _) in enumerate(actions):
        if not description.strip():
            problems.add(f"actions.{i}.description", "Describe the action.")
    problems.raise_if_any()
    return [(d.strip(), s) for d, s in actions]
