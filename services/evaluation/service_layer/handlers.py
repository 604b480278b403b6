"""Command handlers: load what the caller may act on, let the domain decide,
save the new events (and the read tables) in the caller's transaction.

Objects of another organisation, or of a country the caller does not hold,
are ``NotFound`` (404) exactly like objects that do not exist; an assignment
is answered only by its participant (anyone else: 404).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from libs.auth.principal import Principal
from libs.domain.commands import actor_of
from libs.domain.repository import Change, UnitOfWork
from libs.events.contexts.evaluation import (
    ActionStatus,
    EvaluationSettingsChanged,
    Question,
    SurveyTemplatePublished,
    TemplateOrigin,
)
from services.evaluation.domain.answers import check_actions, check_answers
from services.evaluation.domain.assignments import Assignment
from services.evaluation.domain.errors import NotFound
from services.evaluation.domain.results import check_k
from services.evaluation.domain.templates import Template, check_template
from services.evaluation.service_layer.views import is_participant_self


async def load_template(uow: UnitOfWork, principal: Principal, template_id: UUID) -> Template:
    template = await uow.repo.get(Template, template_id)
    if template is None or template.organisation != principal.organisation:
        raise NotFound("template", template_id)
    return template


async def publish_template(
    uow: UnitOfWork, principal: Principal, template_id: UUID, title: dict[str, str], questions: list[Question]
) -> UUID:
    """A new version of a template, in every language of its programme."""
    template = await load_template(uow, principal, template_id)
    languages = await uow.views.programme_languages(uow.conn, principal, template.programme_id)
    check_template(template.kind, languages, title, questions)
    published = SurveyTemplatePublished(
        template_id=template.template_id,
        programme_id=template.programme_id,
        kind=template.kind,
        template_version=template.version + 1,
        origin=TemplateOrigin.HR,
        languages=languages,
        title=title,
        questions=questions,
        actor=actor_of(principal),
    )
    await uow.repo.save(Change(template_id, template.version, template.organisation, None, [published]))
    return template_id


async def change_settings(uow: UnitOfWork, principal: Principal, programme_id: UUID, k_anonymity: int) -> UUID:
    await uow.views.programme_languages(uow.conn, principal, programme_id)  # 404 unless it is known and ours
    check_k(k_anonymity)
    version = await uow.repo.version(programme_id)  # settings: a stream of changes, no state to fold
    changed = EvaluationSettingsChanged(programme_id=programme_id, k_anonymity=k_anonymity, actor=actor_of(principal))
    await uow.repo.save(Change(programme_id, version, principal.organisation, None, [changed]))
    return programme_id


async def answer(
    uow: UnitOfWork,
    principal: Principal,
    assignment_id: UUID,
    answers: Mapping[str, Any],
    actions: list[tuple[str, ActionStatus]] | None,
) -> UUID:
    """The assigned participant answers, once, against the version assigned."""
    assignment = await uow.repo.get(Assignment, assignment_id)
    if assignment is None or not is_participant_self(
        principal, assignment.assigned.participant_id, assignment.organisation
    ):
        raise NotFound("assignment", assignment_id)
    assignment.ensure_open()  # a second answer is a 409, whatever it holds
    template = await uow.repo.get(Template, assignment.assigned.template_id)
    assert template is not None, "an assignment's template exists"
    checked = check_answers(template.at(assignment.assigned.template_version).questions, answers)
    committed = check_actions(actions) if actions is not None else None
    events = assignment.answer(checked, committed, actor_of(principal))
    country = assignment.assigned.country
    await uow.repo.save(Change(assignment_id, assignment.version, assignment.organisation, country, events))
    return assignment_id


async def remind_overdue(uow: UnitOfWork, principal: Principal, now: datetime) -> list[UUID]:
    """Remind every overdue assignment the caller may see (at most once a week each)."""
    reminded = []
    for assignment_id in await uow.views.overdue(uow.conn, principal, now):
        assignment = await uow.repo.get(Assignment, assignment_id)
        assert assignment is not None
        events = assignment.remind(now, actor_of(principal))
        if events:
            country = assignment.assigned.country
            await uow.repo.save(Change(assignment_id, assignment.version, assignment.organisation, country, events))
            reminded.append(assignment_id)
    return reminded
