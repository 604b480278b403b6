"""Survey templates: the rules a version keeps, and a template's history.

A template belongs to one programme and one kind; each publication is a new
version (the whole template), and an assignment pins the version it was made
with, so answers are always checked against the questions the participant saw.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from libs.events.contexts.evaluation import Question, QuestionKind, SurveyKind, SurveyTemplatePublished
from libs.events.registry import DomainEvent
from services.evaluation.domain.errors import Issues

CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_QUESTIONS = 40
MAX_TEXT = 500
CHOICE_KINDS = (QuestionKind.SINGLE_CHOICE, QuestionKind.MULTIPLE_CHOICE)
#: Kinds whose averages are results: they need at least one 1-5 scale question.
SCORED_KINDS = (SurveyKind.DIGITAL_MATURITY, SurveyKind.CLOSING_SELF_ASSESSMENT)


def _check_texts(problems: Issues, path: str, texts: dict[str, str], languages: Sequence[str]) -> None:
    """A text in each of the programme's languages, and only in those."""
    for language in languages:
        text = texts.get(language, "").strip()
        if not text:
            problems.add(f"{path}.{language}", f"A text in {language!r} is required (a language of the programme).")
        elif len(text) > MAX_TEXT:
            problems.add(f"{path}.{language}", f"At most {MAX_TEXT} characters.")
    for language in sorted(set(texts) - set(languages)):
        problems.add(f"{path}.{language}", f"{language!r} is not a language of the programme.")


def _check_question(problems: Issues, path: str, question: Question, languages: Sequence[str]) -> None:
    _check_texts(problems, f"{path}.text", question.text, languages)
    if question.kind in CHOICE_KINDS:
        codes = [o.code for o in question.options]
        if len(codes) < 2:
            problems.add(f"{path}.options", "A choice question offers at least 2 options.")
        for code, times in Counter(codes).items():
            if times > 1:
                problems.add(f"{path}.options", f"Option {code!r} is listed twice.")
        for j, option in enumerate(question.options):
            if not CODE.match(option.code):
                problems.add(f"{path}.options.{j}.code", "A lower-case code: a letter, then letters, digits or _.")
            _check_texts(problems, f"{path}.options.{j}.text", option.text, languages)
    elif question.options:
        problems.add(f"{path}.options", f"A {question.kind.value} question has no options.")


def check_template(
    kind: SurveyKind, languages: Sequence[str], title: dict[str, str], questions: Sequence[Question]
) -> None:
    """Raise ``InvalidInput`` naming every broken rule (paths relative to the body)."""
    problems = Issues()
    _check_texts(problems, "title", title, languages)
    if not questions:
        problems.add("questions", "A survey has at least one question.")
    if len(questions) > MAX_QUESTIONS:
        problems.add("questions", f"A survey has at most {MAX_QUESTIONS} questions.")
    for question_id, times in Counter(q.question_id for q in questions).items():
        if times > 1:
            problems.add("questions", f"Question id {question_id!r} is used twice.")
    for i, question in enumerate(questions):
        if not CODE.match(question.question_id):
            problems.add(f"questions.{i}.question_id", "A lower-case code: a letter, then letters, digits or _.")
        _check_question(problems, f"questions.{i}", question, languages)
    if kind in SCORED_KINDS and not any(q.kind is QuestionKind.SCALE for q in questions):
        problems.add("questions", f"A {kind.value} survey needs at least one 1-5 scale question (its score).")
    problems.raise_if_any()


@dataclass(frozen=True)
class Template:
    """A template's history: every version published, in order."""

    template_id: UUID
    programme_id: UUID
    organisation: str
    kind: SurveyKind
    versions: tuple[SurveyTemplatePublished, ...]

    @classmethod
    def from_events(cls, organisation: str, events: Sequence[SurveyTemplatePublished]) -> Template:
        first = events[0]
        return cls(first.template_id, first.programme_id, organisation, first.kind, tuple(events))

    @classmethod
    def rebuild(cls, organisation: str, events: Sequence[DomainEvent]) -> Template | None:
        """The template its stream holds; None if the stream is not a template's
        (what ``libs.domain.repository.Repository.get`` folds)."""
        if not events or not isinstance(events[0], SurveyTemplatePublished):
            return None
        return cls.from_events(organisation, events)  # type: ignore[arg-type]

    @property
    def version(self) -> int:
        return len(self.versions)

    @property
    def current(self) -> SurveyTemplatePublished:
        return self.versions[-1]

    def at(self, version: int) -> SurveyTemplatePublished:
        return self.versions[version - 1]
