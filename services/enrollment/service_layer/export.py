"""Enrollment's part of a participant's GDPR export (libs/gdpr/export.py): the
participant as the API shows them and every fact of their stream, each
event's data as stored (personal values opened, or ``[erased]`` once the
person is erased). ``Enrollment.export`` collects it; these models say what
it holds (an undeclared key is an error)."""

from __future__ import annotations

from typing import Annotated, Literal, Union
from uuid import UUID

from pydantic import Field, create_model

from libs.events.contexts.enrollment import (
    NeedsAnswer,
    ParticipantEvent,
    ParticipantProfile,
    QualificationRule,
    QualificationScores,
    Role,
    WithdrawalCause,
)
from libs.events.registry import DomainEvent, registry
from libs.gdpr.export import ActorExport, ExportPart, Instant
from services.enrollment.domain.values import ParticipantStatus


class NeedsExport(ExportPart):
    answers: list[NeedsAnswer]
    comments: dict[str, str]
    answered_at: Instant
    answered_by: ActorExport


class QualificationExport(ExportPart):
    scores: QualificationScores
    rule: QualificationRule
    qualified: bool
    assessed_at: Instant
    assessed_by: ActorExport


class WithdrawalExport(ExportPart):
    reason: str
    cause: WithdrawalCause
    withdrawn_at: Instant
    withdrawn_by: ActorExport


class ErasureExport(ExportPart):
    erased_at: Instant
    erased_by: ActorExport
    status: Literal["pending", "completed"]
    completed_at: Instant | None


class TransferExport(ExportPart):
    from_wave_id: UUID
    from_country: str
    to_wave_id: UUID
    to_country: str
    transferred_at: Instant
    approved_by: ActorExport


class ParticipantExport(ExportPart):
    """The participant document (adapters/projector.participant_doc).
    ``directory_country`` and ``erasure`` are absent until set."""

    participant_id: UUID
    programme_id: UUID
    wave_id: UUID
    country: str
    role: Role
    status: ParticipantStatus
    matchable: bool
    profile: ParticipantProfile
    employee_ref: str
    manager_ref: str | None
    display_name: str
    email: str
    motivation: str
    needs: NeedsExport | None
    qualification: QualificationExport | None
    withdrawal: WithdrawalExport | None
    erasure: ErasureExport | None = None
    transfers: list[TransferExport]
    directory_country: str | None = None
    import_id: str | None
    version: int
    enrolled_at: Instant
    enrolled_by: ActorExport
    updated_at: Instant
    updated_by: ActorExport


def _fact(model: type[DomainEvent]) -> type[ExportPart]:
    """One fact of the stream: the event's type (which chooses the model of
    its ``data``), its time and its data as stored."""
    return create_model(
        f"{model.__name__}Fact",
        __base__=ExportPart,
        type=(Literal[model.event_type()], ...),  # type: ignore[valid-type]
        time=(Instant, ...),
        data=(model, ...),
    )


#: Every event type a participant's stream can hold, each with its own model.
PARTICIPANT_FACTS = tuple(
    _fact(model) for key, model in sorted(registry.models.items()) if issubclass(model, ParticipantEvent)
)
Fact = Annotated[Union[PARTICIPANT_FACTS], Field(discriminator="type")]  # noqa: UP007 (a tuple of models)


class EnrollmentExport(ExportPart):
    """Every field ``Enrollment.export`` returns (an undeclared one is an error)."""

    participant: ParticipantExport
    history: list[Fact]  # type: ignore[valid-type]
