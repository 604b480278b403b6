"""Survey answers collected elsewhere (a paper form, another tool), imported
from a spreadsheet: one row per assignment, a column per question.

Every row is checked first, as a participant's own answer would be (the
assignment is one of this template's, open, and visible to the caller; each
answer fits its question of the version assigned). With a bad row nothing
is imported (``ImportRejected``: each bad row's line and field) unless
``valid_only``. Each answer imported is its own ``SurveyAnswered``, its
actor the HR person who imported it (a closing self-assessment's committed
actions are not imported: they are recorded as none). A row naming an
assignment the caller may not see, or none at all, refuses the whole file
with a 404 naming the row, as any request naming such an object does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from libs.auth.principal import Principal
from libs.domain.commands import actor_of
from libs.domain.repository import Change, UnitOfWork
from libs.events.contexts.evaluation import QuestionKind
from libs.tabular import RowError, Table
from services.evaluation.domain.answers import check_answers
from services.evaluation.domain.errors import Conflict, InvalidInput, Issue, NotFound
from services.evaluation.domain.templates import Template
from services.evaluation.domain.assignments import Assignment
from services.evaluation.service_layer.handlers import load_template

ASSIGNMENT_COLUMN = "assignment_id"


@dataclass(frozen=True)
class AnswersImport:
    template_id: UUID
    file_sha256: str
    table: Table
    valid_only: bool


@dataclass
class AnswersImportReport:
    file_sha256: str
    valid_only: bool
    rows: int
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)


class AnswersImportRejected(Exception):
    def __init__(self, report: AnswersImportReport) -> None:
        super().__init__(f"{len(report.errors)} error(s) in the file: nothing was imported.")
        self.report = report


def columns_of(template: Template) -> tuple[set[str], set[str]]:
    """The file's columns (the assignment, every question of every version)
    and those holding lists (multiple choices, ``a|b``)."""
    questions = [q for version in template.versions for q in version.questions]
    lists = {q.question_id for q in questions if q.kind is QuestionKind.MULTIPLE_CHOICE}
    return {ASSIGNMENT_COLUMN, *(q.question_id for q in questions)}, lists


async def import_answers(uow: UnitOfWork, principal: Principal, cmd: AnswersImport) -> AnswersImportReport:
    template = await load_template(uow, principal, cmd.template_id)
    report = AnswersImportReport(cmd.file_sha256, cmd.valid_only, len(cmd.table.rows) + len(cmd.table.bad_rows))
    report.errors.extend(cmd.table.bad_rows)
    changes, first_line = [], {}
    for row in cmd.table.rows:
        try:
            assignment_id = _assignment_id(row.values.get(ASSIGNMENT_COLUMN))
            if assignment_id in first_line:
                raise InvalidInput([Issue(ASSIGNMENT_COLUMN, f"The same assignment as on line {first_line[assignment_id]}.")])
            first_line[assignment_id] = row.line
            changes.append(await _answer(uow, principal, template, assignment_id, row.values, row.line))
        except InvalidInput as exc:
            report.errors.extend(RowError(row.line, issue.field, issue.message) for issue in exc.issues)
        except Conflict as exc:
            report.errors.append(RowError(row.line, ASSIGNMENT_COLUMN, str(exc)))
    report.errors.sort(key=lambda e: e.line)
    if report.errors and not cmd.valid_only:
        raise AnswersImportRejected(report)
    await uow.repo.save(*changes)
    report.imported = len(changes)
    return report


def _assignment_id(value: Any) -> UUID:
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidInput([Issue(ASSIGNMENT_COLUMN, "An assignment id (a UUID).")]) from None


async def _answer(
    uow: UnitOfWork, principal: Principal, template: Template, assignment_id: UUID, values: dict[str, Any], line: int
) -> Change:
    assignment = await uow.repo.get(Assignment, assignment_id)
    if assignment is None or not principal.can_see(assignment.organisation, assignment.assigned.country):
        raise NotFound(f"line {line}: assignment", assignment_id)
    a = assignment.assigned
    if a.template_id != template.template_id:
        raise InvalidInput([Issue(ASSIGNMENT_COLUMN, "An assignment of another survey.")])
    assignment.ensure_open()
    questions = template.at(a.template_version).questions
    answers = {q.question_id: _typed(q.kind, values[q.question_id]) for q in questions if q.question_id in values}
    extra = sorted(set(values) - {ASSIGNMENT_COLUMN} - {q.question_id for q in questions})
    if extra:  # a question of another version of the survey than the one assigned
        raise InvalidInput([Issue(extra[0], "Not a question of the version this participant was assigned.")])
    try:
        checked = check_answers(questions, answers)
    except InvalidInput as exc:  # "answers.<question>" -> the column "<question>"
        raise InvalidInput([Issue(i.field.removeprefix("answers."), i.message) for i in exc.issues]) from None
    events = assignment.answer(checked, None, actor_of(principal))
    return Change(assignment_id, assignment.version, assignment.organisation, a.country, events)


def _typed(kind: QuestionKind, cell: Any) -> Any:
    """A spreadsheet cell as the answer's type: a scale's digits as an integer."""
    if kind is QuestionKind.SCALE and isinstance(cell, str) and cell.strip().isdigit():
        return int(cell)
    return cell
