"""What callers ask the enrollment service to do, already shaped and typed
(the API checked formats; the domain checks rules)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from libs.events.contexts.enrollment import NeedsAnswer, ProgrammeMode, QualificationScores
from libs.tabular import RowError
from services.enrollment.domain.participant import Enrolment
from services.enrollment.domain.wave import WavePlan


@dataclass(frozen=True)
class CreateProgramme:
    name: str
    mode: ProgrammeMode
    settings: dict[str, Any] = field(default_factory=dict)  # top-level settings replacing the defaults


@dataclass(frozen=True)
class ChangeProgrammeSettings:
    programme_id: UUID
    changes: dict[str, Any]
    expected_version: int | None = None  # from If-Match


@dataclass(frozen=True)
class OpenWave:
    programme_id: UUID
    plan: WavePlan


@dataclass(frozen=True)
class CloseWaveEnrolment:
    wave_id: UUID


@dataclass(frozen=True)
class EndWave:
    wave_id: UUID


@dataclass(frozen=True)
class Enrol:
    wave_id: UUID
    enrolment: Enrolment


@dataclass(frozen=True)
class EnrolFromDirectory:
    """Enrol a provisioned person: ``given`` holds the fields the caller gave
    (``employee_ref`` among them); the directory gives the rest."""

    wave_id: UUID
    employee_ref: str
    given: dict[str, Any]


@dataclass(frozen=True)
class UpdateProfile:
    participant_id: UUID
    profile: dict[str, Any]  # changed profile fields
    personal: dict[str, Any]  # changed personal fields
    expected_version: int | None = None


@dataclass(frozen=True)
class Withdraw:
    participant_id: UUID
    reason: str


@dataclass(frozen=True)
class Erase:
    participant_id: UUID


@dataclass(frozen=True)
class AnswerNeeds:
    participant_id: UUID
    answers: list[NeedsAnswer]
    comments: dict[str, str]


@dataclass(frozen=True)
class AssessQualification:
    participant_id: UUID
    scores: QualificationScores


@dataclass(frozen=True)
class ImportRow:
    """One row of an uploaded file: its enrolment, or why it has none."""

    line: int
    enrolment: Enrolment | None
    errors: tuple[RowError, ...] = ()
    #: A row naming a person of the HR directory: the fields it gives (the directory gives the rest).
    given: dict[str, Any] | None = None


@dataclass(frozen=True)
class ImportParticipants:
    wave_id: UUID
    file_sha256: str
    rows: list[ImportRow]
    valid_only: bool = False


@dataclass(frozen=True)
class Transfer:
    participant_id: UUID
    wave_id: UUID  # the wave it moves to


@dataclass(frozen=True)
class TransferMany:
    wave_id: UUID  # the wave they leave
    to_wave_id: UUID
    participant_ids: tuple[UUID, ...]
