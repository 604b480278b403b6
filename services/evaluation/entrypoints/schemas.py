"""The API's request and response bodies. Requests forbid unknown fields and
check formats; the domain checks the rules (languages of the programme,
options, answers against the template version)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.api.text import stripped
from libs.events.contexts.enrollment import Actor
from libs.events.contexts.evaluation import (
    ActionStatus,
    AnswerItem,
    Phase,
    Question,
    QuestionKind,
    QuestionOption,
    Respondent,
    SurveyKind,
    TemplateOrigin,
)
from services.evaluation.domain.language import LanguageSource

Code = stripped(40)
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
Texts = Annotated[
    dict[Language, Annotated[str, StringConstraints(max_length=2000)]],
    # pydantic validates the keys but does not write their pattern in the schema.
    Field(max_length=30, json_schema_extra={"propertyNames": {"pattern": r"^[a-z]{2}$"}}),
]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OptionIn(Input):
    code: Code
    text: Texts


class QuestionIn(Input):
    question_id: Code
    kind: QuestionKind
    text: Texts
    required: bool = True
    options: list[OptionIn] = Field(default_factory=list, max_length=30)

    def to_question(self) -> Question:
        return Question(
            question_id=self.question_id,
            kind=self.kind,
            text=self.text,
            required=self.required,
            options=[QuestionOption(code=o.code, text=o.text) for o in self.options],
        )


class TemplateVersionIn(Input):
    """The whole new version: a title and questions in every language of the programme."""

    title: Texts
    questions: list[QuestionIn] = Field(max_length=100)


class SettingsIn(Input):
    k_anonymity: int = Field(
        description="Smallest group whose aggregates are shown (at least 3).",
        le=10_000,
        json_schema_extra={"minimum": 3},  # the domain's rule (a 422 of type rule), stated in the document
    )


class ActionIn(Input):
    description: stripped(500)  # type: ignore[valid-type]
    status: ActionStatus


class AnswersIn(Input):
    """``answers`` maps each question id to: an integer 1-5 (scale), an option
    code (single choice), a list of codes (multiple choice) or text (free
    text). ``actions``: the closing self-assessment's committed actions."""

    answers: dict[Code, Any] = Field(max_length=100)
    actions: list[ActionIn] | None = Field(None, max_length=50)

    def action_list(self) -> list[tuple[str, ActionStatus]] | None:
        return None if self.actions is None else [(a.description, a.status) for a in self.actions]


# --------------------------------------------------------------------------- responses


class TemplateOut(BaseModel):
    template_id: UUID
    programme_id: UUID
    kind: SurveyKind
    template_version: int
    origin: TemplateOrigin
    languages: list[str]
    title: dict[str, str]
    questions: list[Question]
    published_at: datetime | None = None
    published_by: Actor | None = None


class SettingsOut(BaseModel):
    programme_id: UUID
    k_anonymity: int
    version: int


class ActionOut(BaseModel):
    status: ActionStatus
    description: str | None = None  # its author's only


class SurveyOut(BaseModel):
    title: dict[str, str]
    languages: list[str]
    questions: list[Question]
    language: str = Field(
        description="The language to show this survey in: the first of the participant's profile languages the "
        "survey has, else the programme's default (its first language)."
    )
    language_source: LanguageSource


class AssignmentOut(BaseModel):
    assignment_id: UUID
    programme_id: UUID
    wave_id: UUID
    country: str
    pair_id: UUID
    participant_id: UUID
    template_id: UUID
    template_version: int
    kind: SurveyKind
    phase: Phase
    respondent: Respondent
    session_id: UUID | None
    status: str
    due_at: datetime
    overdue: bool
    assigned_at: datetime
    assigned_by: Actor
    reminders: int
    last_reminded_at: datetime | None
    answers: list[AnswerItem] | None
    free_text: dict[str, str] | None = Field(None, description="Shown to its author only.")
    actions: list[ActionOut] | None
    answered_at: datetime | None
    cancelled: CancelledOut | None
    version: int
    survey: SurveyOut | None = Field(None, description="The questions of the version assigned (single reads).")


class RemindedOut(BaseModel):
    reminded: list[UUID]


class PairMaturityOut(BaseModel):
    pair_id: UUID
    pre_answered: bool
    post_answered: bool
    pre: float | None
    post: float | None
    delta: float | None
    delta_percent: float | None


class CancelledOut(BaseModel):
    reason: str
    at: datetime


class RateOut(BaseModel):
    assigned: int
    answered: int
    rate: float | None = Field(description="answered / assigned; null when nothing was assigned.")


class FigureOut(BaseModel):
    respondents: int
    value: float | None = Field(description="null when withheld (fewer than k respondents).")
    withheld: bool


class DeltaOut(BaseModel):
    respondents: int = Field(description="Pairs answered both before and after.")
    pre: float | None
    post: float | None
    change_of_means_percent: float | None = Field(
        description="(mean post - mean pre) / mean pre * 100 over the mentees who answered both."
    )
    delta_percent: float | None = Field(
        description="Deprecated older name of change_of_means_percent (the same value).",
        json_schema_extra={"deprecated": True},
    )
    withheld: bool


class MaturityOut(BaseModel):
    pre: FigureOut
    post: FigureOut
    delta: DeltaOut


class ActionsSummaryOut(BaseModel):
    respondents: int
    started: int | None
    planned: int | None
    withheld: bool


class ResultGroupOut(BaseModel):
    group: str
    response_rates: dict[str, RateOut] = Field(
        description="Per survey (digital_maturity_pre, digital_maturity_post and the other kinds)."
    )
    maturity: MaturityOut
    averages: dict[str, FigureOut] = Field(description="Per survey kind other than digital maturity.")
    actions: ActionsSummaryOut


class ResultsOut(BaseModel):
    programme_id: UUID
    group_by: str
    k_anonymity: int
    groups: list[ResultGroupOut] = Field(
        description="Per group: response_rates, maturity (pre, post, and the paired `delta`: its `pre` and "
        "`post` means and `change_of_means_percent` = (mean post - mean pre) / mean pre * 100 over the mentees "
        "who answered both; `delta_percent` is its deprecated older name, the same value), averages, actions; "
        "a figure from fewer than k respondents has value null and withheld true."
    )


class ImportRowErrorOut(BaseModel):
    line: int = Field(description="The row's line (CSV) or row number (XLSX); the header is 1.")
    field: str = Field(description="The column (a question id, assignment_id) or 'row'.")
    message: str


class AnswersImportOut(BaseModel):
    file_sha256: str
    valid_only: bool
    rows: int
    imported: int = Field(description="Answers recorded, each its own SurveyAnswered event.")
    errors: list[ImportRowErrorOut] = Field(description="Rows left out (mode=valid_only only).")
