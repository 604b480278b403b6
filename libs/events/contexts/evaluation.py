"""Events of the evaluation context: survey templates, assignments, answers
and committed actions. Emitted by ``services/evaluation`` on topic
``binome.evaluation.events``; consumed by insights (impact and health).

Streams (``subject``):

* a survey template, one per programme and kind (``template_id``): each
  ``SurveyTemplatePublished`` is the next version, the whole of it;
* a programme's evaluation settings (``programme_id``):
  ``EvaluationSettingsChanged``;
* an assignment (``assignment_id``), one survey for one participant::

      SurveyAssigned ─┬─ AssignmentReminded (while open, any number of times)
                      ├─> SurveyAnswered [+ ActionsCommitted at closing]
                      └─> AssignmentCancelled (the pair was dissolved)

Conventions, as in the other contexts: ``data`` names the programme, wave,
country (the pair's home: the mentee's wave), pair and participant, so a
consumer files a fact without reading another event; ``actor`` says who made
the change (for assignments made in reaction to another context's event:
the evaluation service itself, and the envelope's ``causationid`` names that
event). What a person typed (free-text answers, action descriptions) is
listed in ``personal_fields``; scored answers are not personal free text.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from libs.events.contexts.enrollment import Actor
from libs.events.registry import DomainEvent, event

CONTEXT = "evaluation"


# --------------------------------------------------------------------------- enums


class SurveyKind(StrEnum):
    #: Digital maturity, answered by the mentee before (pre) and after (post):
    #: the same questions, so the delta means something.
    DIGITAL_MATURITY = "digital_maturity"
    SESSION_FEEDBACK = "session_feedback"
    CLOSING_SELF_ASSESSMENT = "closing_self_assessment"
    #: The mentor's own questionnaire: what they learned about the company.
    MENTOR_QUESTIONNAIRE = "mentor_questionnaire"


class QuestionKind(StrEnum):
    SCALE = "scale"  # 1..5
    SINGLE_CHOICE = "single_choice"
    MULTIPLE_CHOICE = "multiple_choice"
    FREE_TEXT = "free_text"


class Phase(StrEnum):
    """When in a pair's life an assignment was made."""

    PRE = "pre"  # the pair formed
    SESSION = "session"  # a session was held
    POST = "post"  # the pair completed (maturity, again)
    CLOSING = "closing"  # the pair completed (self-assessment, mentor questionnaire)


class Respondent(StrEnum):
    MENTEE = "mentee"
    MENTOR = "mentor"


class TemplateOrigin(StrEnum):
    DEFAULT = "default"  # created by the service for a new programme
    HR = "hr"  # published by an HR admin


class ActionStatus(StrEnum):
    STARTED = "started"
    PLANNED = "planned"


class CancellationReason(StrEnum):
    PAIR_DISSOLVED = "pair_dissolved"


# --------------------------------------------------------------------------- values


class Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QuestionOption(Value):
    code: str
    text: dict[str, str]  # language (ISO 639-1) -> text


class Question(Value):
    question_id: str
    kind: QuestionKind
    text: dict[str, str]  # language -> text
    required: bool = True
    options: list[QuestionOption] = []  # choice questions only


class AnswerItem(Value):
    """One answered question (free text is not here: see ``free_text``)."""

    question_id: str
    kind: QuestionKind
    scale: int | None = None  # scale questions: 1..5
    options: list[str] = []  # choice questions: the option codes picked


# --------------------------------------------------------------------------- bases


class EvaluationEvent(DomainEvent):
    actor: Actor


class AssignmentEvent(EvaluationEvent):
    """Every fact about one assignment: its stream id is ``assignment_id``."""

    assignment_id: UUID
    programme_id: UUID
    wave_id: UUID
    country: str
    pair_id: UUID
    participant_id: UUID


# --------------------------------------------------------------------------- templates and settings


@event(CONTEXT, "SurveyTemplatePublished", version=1)
class SurveyTemplatePublished(EvaluationEvent):
    """A version of a programme's survey template: the whole of it, with a
    text for every question and option in each of ``languages``."""

    template_id: UUID
    programme_id: UUID
    kind: SurveyKind
    template_version: int
    origin: TemplateOrigin
    languages: list[str]
    title: dict[str, str]
    questions: list[Question]


@event(CONTEXT, "EvaluationSettingsChanged", version=1)
class EvaluationSettingsChanged(EvaluationEvent):
    """A programme's evaluation settings: ``k_anonymity`` is the smallest
    group whose aggregates are shown (never below 3)."""

    programme_id: UUID
    k_anonymity: int


# --------------------------------------------------------------------------- assignments


@event(CONTEXT, "SurveyAssigned", version=1)
class SurveyAssigned(AssignmentEvent):
    """A participant has a survey to answer by ``due_at``."""

    template_id: UUID
    template_version: int
    kind: SurveyKind
    phase: Phase
    respondent: Respondent
    session_id: UUID | None = None  # feedback: the session held
    due_at: datetime


@event(CONTEXT, "AssignmentReminded", version=1)
class AssignmentReminded(AssignmentEvent):
    """An open assignment past its due date was reminded (the ``reminder``-th time)."""

    due_at: datetime
    reminder: int
    reminded_at: datetime


@event(CONTEXT, "SurveyAnswered", version=1)
class SurveyAnswered(AssignmentEvent):
    """The participant answered, once, against the template version assigned."""

    personal_fields = frozenset({"free_text"})

    template_id: UUID
    template_version: int
    kind: SurveyKind
    phase: Phase
    answers: list[AnswerItem]
    free_text: dict[str, str] = {}  # question_id -> what the person wrote


@event(CONTEXT, "ActionsCommitted", version=1)
class ActionsCommitted(AssignmentEvent):
    """At closing, the mentee listed the operational actions the programme
    triggered: ``statuses[i]`` is the status of the action ``descriptions[i]``
    describes (what the person typed: personal, so it may be shredded while
    the statuses stay); ``started`` and ``planned`` count them."""

    personal_fields = frozenset({"descriptions"})

    statuses: list[ActionStatus]
    descriptions: list[str]
    started: int
    planned: int


@event(CONTEXT, "AssignmentCancelled", version=1)
class AssignmentCancelled(AssignmentEvent):
    """An open assignment will not be answered (it no longer counts in response rates)."""

    reason: CancellationReason
