"""Bulk import of a wave's participants (HR committees' spreadsheets).

Every row is checked first (format by the API, rules by the domain, and the
one-enrolment-per-person rule against the programme and the file itself).
With any bad row, nothing is imported unless the caller asked for the valid
rows only. Re-uploading the same file creates nothing more: a row's
participant id and event id derive from (wave, file hash, line), so a row
imported before is recognised, and a concurrent double upload is absorbed by
the event store's idempotency (same event ids: nothing written twice).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID, uuid5

from libs.auth.principal import Principal
from libs.domain.repository import Change, UnitOfWork
from libs.tabular import RowError
from services.enrollment.domain.errors import DomainError, DuplicateEnrolment, InvalidInput, InvalidState
from services.enrollment.domain.participant import Participant
from services.enrollment.service_layer import directory
from services.enrollment.service_layer.commands import ImportParticipants
from services.enrollment.service_layer.handlers import actor_of, load_programme, load_wave

IMPORT_NAMESPACE = UUID("5f0c7e1e-8a8d-4a53-9d43-3f1b2f8f6a10")


def imported_participant_id(wave_id: UUID, file_sha256: str, line: int) -> UUID:
    return uuid5(IMPORT_NAMESPACE, f"{wave_id}:{file_sha256}:{line}")


def enrolment_event_id(participant_id: UUID) -> UUID:
    return uuid5(IMPORT_NAMESPACE, f"{participant_id}:enrolled")


@dataclass(frozen=True)
class ImportReport:
    file_sha256: str
    valid_only: bool
    rows: int
    imported: int = 0
    already_imported: int = 0
    errors: list[RowError] = field(default_factory=list)


class ImportRejected(DomainError):
    """Some rows are bad and the caller wanted all or nothing: nothing imported (422)."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        lines = sorted({e.line for e in report.errors})
        super().__init__(f"{len(lines)} of {report.rows} rows are invalid; nothing was imported.")


async def import_participants(uow: UnitOfWork, principal: Principal, cmd: ImportParticipants) -> ImportReport:
    wave = await load_wave(uow, principal, cmd.wave_id, lock=True)
    if not wave.is_open:
        raise InvalidState(f"Wave {wave.id} is {wave.status}: enrolment is closed.")
    programme = await load_programme(uow, principal, wave.programme_id)
    actor = actor_of(principal)

    errors = [error for row in cmd.rows for error in row.errors]
    rows = [(row.line, row.enrolment) for row in cmd.rows if row.enrolment is not None]
    for row in cmd.rows:
        if row.given is not None:  # a person of the HR directory, by employee reference
            try:
                person = await directory.provisioned(uow, principal.organisation, row.given["employee_ref"])
                rows.append((row.line, directory.directory_enrolment(person, row.given)))
            except InvalidInput as exc:
                errors.extend(RowError(row.line, issue.field, issue.message) for issue in exc.issues)
    rows.sort(key=lambda item: item[0])
    enrolled = await uow.views.active_enrolments(uow.conn, programme.id, [e.employee_ref for _, e in rows])
    first_line: dict[str, int] = {}
    new: list[Participant] = []
    already = 0
    for line, enrolment in rows:
        ref = enrolment.employee_ref
        participant_id = imported_participant_id(wave.id, cmd.file_sha256, line)
        if ref in first_line:
            errors.append(RowError(line, "employee_ref", f"The same person as on line {first_line[ref]}."))
            continue
        first_line[ref] = line
        if ref in enrolled:
            existing, country = enrolled[ref]
            if existing == participant_id:  # this very row, imported by an earlier upload
                already += 1
            else:
                duplicate = DuplicateEnrolment(ref, existing, visible=principal.can_see_country(country))
                errors.append(RowError(line, "employee_ref", str(duplicate)))
            continue
        try:
            participant = Participant.enrol(
                participant_id=participant_id,
                programme=programme,
                wave=wave,
                enrolment=enrolment,
                actor=actor,
                import_id=cmd.file_sha256,
            )
        except InvalidInput as exc:
            errors.extend(RowError(line, issue.field, issue.message) for issue in exc.issues)
            continue
        new.append(participant)

    errors.sort(key=lambda e: e.line)
    if errors and not cmd.valid_only:
        raise ImportRejected(ImportReport(cmd.file_sha256, cmd.valid_only, len(cmd.rows), 0, already, errors))
    stored = await uow.repo.save(*(Change.of(p, [enrolment_event_id(p.id)]) for p in new))
    imported = len(stored)  # none when a concurrent upload of the same file stored them first
    return ImportReport(cmd.file_sha256, cmd.valid_only, len(cmd.rows), imported, already + len(new) - imported, errors)
