"""Events -> read tables, inside the transaction that appends the events.

The read tables (``migrations/0001_read_model.sql``) are a pure function of
the log: ``apply`` is the only code that writes them, both when a command
appends events and when ``rebuild`` replays the whole log. A participant row
carries its API document (``doc``) plus the columns that lists filter on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from libs.database import jsonb
from libs.domain.projector import InlineProjector
from libs.events.by_name import fold
from libs.events.contexts.enrollment import (
    MentorQualificationAssessed,
    NeedsAnswered,
    ParticipantEnrolled,
    ParticipantErased,
    ParticipantEvent,
    ParticipantProfileUpdated,
    ParticipantTransferred,
    ParticipantRelocated,
    ParticipantWithdrew,
    ProgrammeCreated,
    ProgrammeSettingsChanged,
    Role,
    WaveEnded,
    WaveEnrolmentClosed,
    WaveEvent,
    WaveOpened,
)
from libs.events.envelope import Envelope
from libs.eventstore.migrations import check_schema_name
from libs.eventstore.store import EventStore
from libs.gdpr.personal import ERASED
from services.enrollment.domain.errors import DuplicateEnrolment
from services.enrollment.domain.values import ParticipantStatus, WaveStatus, is_matchable

READ_TABLES = ("participants", "waves", "programmes")  # children first
ONE_ENROLMENT_PER_PERSON = "participants_one_enrolment_per_person"
Doc = dict[str, Any]


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json")


class ParticipantDoc:
    """How each participant event changes the participant document:
    ``on_<EventClassName>(doc, at, actor, event)``."""

    def on_ParticipantEnrolled(self, doc: None, at: str, actor: Doc, event: ParticipantEnrolled) -> Doc:
        return {
            **event.model_dump(mode="json", exclude={"actor", "import_id"}),
            "status": ParticipantStatus.ENROLLED.value,
            "needs": None,
            "qualification": None,
            "withdrawal": None,
            "transfers": [],
            "import_id": event.import_id,
            "enrolled_at": at,
            "enrolled_by": actor,
        }

    def on_ParticipantProfileUpdated(self, doc: Doc, at: str, actor: Doc, event: ParticipantProfileUpdated) -> Doc:
        doc["profile"] = _dump(event.profile)
        for name in ("display_name", "email", "motivation", "manager_ref"):
            if getattr(event, name) is not None:
                doc[name] = getattr(event, name)
        if event.manager_ref_removed:
            doc["manager_ref"] = None
        return doc

    def on_ParticipantWithdrew(self, doc: Doc, at: str, actor: Doc, event: ParticipantWithdrew) -> Doc:
        doc["status"] = ParticipantStatus.WITHDRAWN.value
        doc["withdrawal"] = {
            "reason": event.reason,
            "cause": event.cause.value,
            "withdrawn_at": at,
            "withdrawn_by": actor,
        }
        return doc

    def on_ParticipantRelocated(self, doc: Doc, at: str, actor: Doc, event: ParticipantRelocated) -> Doc:
        # Back in the wave's country: nothing left for the committee to decide.
        moved = event.directory_country != event.country
        doc["directory_country"] = event.directory_country if moved else None
        return doc

    def on_ParticipantTransferred(self, doc: Doc, at: str, actor: Doc, event: ParticipantTransferred) -> Doc:
        doc["wave_id"], doc["country"] = str(event.wave_id), event.country
        doc["transfers"] = [*doc.get("transfers", []), {
            "from_wave_id": str(event.from_wave_id), "from_country": event.from_country,
            "to_wave_id": str(event.wave_id), "to_country": event.country,
            "transferred_at": at, "approved_by": actor,
        }]  # fmt: skip
        return doc

    def on_ParticipantErased(self, doc: Doc, at: str, actor: Doc, event: ParticipantErased) -> Doc:
        doc = erased_doc(doc)
        doc["erasure"] = {"erased_at": at, "erased_by": actor}
        return doc

    def on_NeedsAnswered(self, doc: Doc, at: str, actor: Doc, event: NeedsAnswered) -> Doc:
        doc["needs"] = {
            "answers": [_dump(a) for a in event.answers],
            "comments": event.comments,
            "answered_at": at,
            "answered_by": actor,
        }
        doc["profile"] = {**doc["profile"], "themes_wanted": [_dump(t) for t in event.themes_wanted]}
        return doc

    def on_MentorQualificationAssessed(
        self, doc: Doc, at: str, actor: Doc, event: MentorQualificationAssessed
    ) -> Doc:
        doc["qualification"] = {
            "scores": _dump(event.scores),
            "rule": _dump(event.rule),
            "qualified": event.qualified,
            "assessed_at": at,
            "assessed_by": actor,
        }
        return doc


PARTICIPANT_DOC = ParticipantDoc()


def participant_doc(doc: Doc | None, envelope: Envelope, event: ParticipantEvent) -> Doc:
    """The participant document after ``event`` (a pure function of the log)."""
    assert doc is not None or isinstance(event, ParticipantEnrolled), f"{event.event_type()} before ParticipantEnrolled"
    at, actor = envelope.time.isoformat(), _dump(event.actor)
    doc = fold(PARTICIPANT_DOC, None if doc is None else dict(doc), at, actor, event=event)
    doc["version"] = envelope.sequence
    doc["updated_at"] = at
    doc["updated_by"] = actor
    doc["matchable"] = is_matchable(
        Role(doc["role"]),
        ParticipantStatus(doc["status"]),
        bool(doc["qualification"] and doc["qualification"]["qualified"]),
        bool(doc["profile"]["themes_wanted"]),
    )
    return doc


#: Personal values of a participant document (ARCHITECTURE.md, GDPR).
PERSONAL_DOC_FIELDS = ("display_name", "email", "motivation", "employee_ref", "manager_ref")


def erased_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with every personal value gone (ids, profile codes and
    dates stay: they say nothing about who the person was on their own)."""
    doc = {**doc, "status": ParticipantStatus.ERASED.value}
    for name in PERSONAL_DOC_FIELDS:
        if doc.get(name) is not None:
            doc[name] = ERASED
    if doc.get("withdrawal"):
        doc["withdrawal"] = {**doc["withdrawal"], "reason": ERASED}
    if doc.get("needs"):
        doc["needs"] = {**doc["needs"], "comments": {}}
    return doc


class Projector(InlineProjector):
    context = "enrollment"
    folder = ParticipantDoc

    def __init__(self, schema: str) -> None:
        s = self.schema = check_schema_name(schema)
        self._sql_programme_created = f"""
            INSERT INTO {s}.programmes (programme_id, organisation, name, mode, settings, version,
                                        created_at, created_by, updated_at, updated_by)
            VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8::jsonb, $7, $8::jsonb)"""
        self._sql_programme_changed = f"""
            UPDATE {s}.programmes SET settings = $2::jsonb, version = $3, updated_at = $4, updated_by = $5::jsonb
            WHERE programme_id = $1"""
        self._sql_wave_opened = f"""
            INSERT INTO {s}.waves (wave_id, programme_id, organisation, name, region, country, committee,
                                   starts_on, ends_on, target_pairs, status, version,
                                   opened_at, opened_by, updated_at, updated_by, enrolment_closes_on)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $13, $14::jsonb, $15)"""
        self._sql_wave_status = f"""
            UPDATE {s}.waves SET status = $2, version = $3, updated_at = $4, updated_by = $5::jsonb
            WHERE wave_id = $1"""
        self._sql_participant_docs = (
            f"SELECT participant_id, doc_text FROM {s}.participants WHERE participant_id = ANY($1::uuid[])"
        )
        # One statement for any number of rows (a 1,500-row import is one round trip).
        self._sql_participant_upsert = f"""
            INSERT INTO {s}.participants (participant_id, organisation, programme_id, wave_id, country, role,
                                          status, employee_ref, themes, needs_answered, qualified, matchable,
                                          version, enrolled_at, updated_at, doc)
            SELECT participant_id, organisation, programme_id, wave_id, country, role, status, employee_ref,
                   themes, needs_answered, qualified, matchable, version, enrolled_at, updated_at, doc
            FROM jsonb_to_recordset($1::jsonb) AS r(
                participant_id uuid, organisation text, programme_id uuid, wave_id uuid, country text, role text,
                status text, employee_ref text, themes text[], needs_answered boolean, qualified boolean,
                matchable boolean, version integer, enrolled_at timestamptz, updated_at timestamptz, doc jsonb)
            ON CONFLICT (participant_id) DO UPDATE SET
                wave_id = EXCLUDED.wave_id, country = EXCLUDED.country, status = EXCLUDED.status, employee_ref = EXCLUDED.employee_ref, themes = EXCLUDED.themes,
                needs_answered = EXCLUDED.needs_answered, qualified = EXCLUDED.qualified,
                matchable = EXCLUDED.matchable, version = EXCLUDED.version,
                updated_at = EXCLUDED.updated_at, doc = EXCLUDED.doc"""

    async def apply(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        """A command's new events (the repository's call). A person's second
        enrolment is refused as ``DuplicateEnrolment``, its transaction then
        aborted: no savepoint around the statements (two round trips on every
        participant command), the caller names the winner from outside it
        (``refuse_duplicate_outside``)."""
        try:
            await self.apply_log(conn, envelopes)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == ONE_ENROLMENT_PER_PERSON:
                raise DuplicateEnrolment() from exc
            raise

    async def apply_log(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope]) -> None:
        """Apply events in log order; a run of participant events is written
        in one batch (a 1,500-row import is one statement round), their
        documents folded by ``ParticipantDoc``."""
        batch: list[tuple[Envelope, ParticipantEvent]] = []
        for envelope, event in self.events(envelopes):
            if isinstance(event, ParticipantEvent):
                batch.append((envelope, event))
                continue
            await self._participants(conn, batch)
            batch = []
            await self.handler_for(event)(conn, envelope, event)
        await self._participants(conn, batch)

    async def on_ProgrammeCreated(self, conn: asyncpg.Connection, envelope: Envelope, event: ProgrammeCreated) -> None:
        await conn.execute(
            self._sql_programme_created, event.programme_id, envelope.tenant, event.programme_name, event.mode.value,
            jsonb(_dump(event.settings)), envelope.sequence, envelope.time, jsonb(_dump(event.actor)),
        )  # fmt: skip

    async def on_ProgrammeSettingsChanged(
        self, conn: asyncpg.Connection, envelope: Envelope, event: ProgrammeSettingsChanged
    ) -> None:
        await conn.execute(
            self._sql_programme_changed, event.programme_id, jsonb(_dump(event.settings)), envelope.sequence,
            envelope.time, jsonb(_dump(event.actor)),
        )

    async def on_WaveOpened(self, conn: asyncpg.Connection, envelope: Envelope, event: WaveOpened) -> None:
        await conn.execute(
            self._sql_wave_opened, event.wave_id, event.programme_id, envelope.tenant, event.wave_name, event.region,
            event.country, event.committee, event.starts_on, event.ends_on, event.target_pairs, WaveStatus.OPEN.value,
            envelope.sequence, envelope.time, jsonb(_dump(event.actor)), event.enrolment_closes_on,
        )  # fmt: skip

    async def on_WaveEnrolmentClosed(
        self, conn: asyncpg.Connection, envelope: Envelope, event: WaveEnrolmentClosed
    ) -> None:
        await self._wave_status(conn, envelope, event, WaveStatus.ENROLMENT_CLOSED)

    async def on_WaveEnded(self, conn: asyncpg.Connection, envelope: Envelope, event: WaveEnded) -> None:
        await self._wave_status(conn, envelope, event, WaveStatus.ENDED)

    async def _wave_status(
        self, conn: asyncpg.Connection, envelope: Envelope, event: WaveEvent, status: WaveStatus
    ) -> None:
        await conn.execute(
            self._sql_wave_status, event.wave_id, status.value, envelope.sequence, envelope.time,
            jsonb(_dump(event.actor)),
        )

    async def _participants(self, conn: asyncpg.Connection, batch: list[tuple[Envelope, ParticipantEvent]]) -> None:
        if not batch:
            return
        existing = [e.participant_id for _, e in batch if not isinstance(e, ParticipantEnrolled)]
        docs: dict[Any, dict[str, Any]] = {}
        tenants: dict[Any, str] = {}
        if existing:
            for row in await conn.fetch(self._sql_participant_docs, existing):
                docs[row[0]] = orjson.loads(row[1])
        for envelope, event in batch:
            pid = event.participant_id
            docs[pid] = participant_doc(docs.get(pid), envelope, event)
            tenants[pid] = envelope.tenant
        rows = [_participant_row(tenants[p], d) for p, d in docs.items()]
        await conn.execute(self._sql_participant_upsert, jsonb(rows))

    async def rebuild(self, conn: asyncpg.Connection, store: EventStore, batch: int = 1000) -> int:
        """Empty the read tables and apply the whole log again, inside the
        caller's transaction (writers wait meanwhile); return the events applied."""
        await conn.execute(f"TRUNCATE {', '.join(f'{self.schema}.{t}' for t in READ_TABLES)}")
        applied, chunk = 0, []
        async for envelope in store.iterate_log_exclusively(conn, batch):
            chunk.append(envelope)
            if len(chunk) == batch:
                await self.apply_log(conn, chunk)
                applied, chunk = applied + len(chunk), []
        await self.apply_log(conn, chunk)
        return applied + len(chunk)


COPIED_COLUMNS = (
    "participant_id",
    "programme_id",
    "wave_id",
    "country",
    "role",
    "status",
    "employee_ref",
    "matchable",
    "version",
    "enrolled_at",
    "updated_at",
)


def _participant_row(organisation: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The participants row of a document: the document and what lists filter on."""
    profile, qualification = doc["profile"], doc["qualification"]
    employee_ref = doc["employee_ref"]
    if employee_ref == ERASED:
        # Unique per participant: erased people never collide in the
        # one-enrolment-per-person index, even while a replay passes through
        # their enrolment before their erasure.
        employee_ref = f"{ERASED}:{doc['participant_id']}"
    return {
        **{name: doc[name] for name in COPIED_COLUMNS},
        "employee_ref": employee_ref,
        "organisation": organisation,
        "themes": sorted(
            {t["theme"] for t in profile["themes_wanted"]} | {t["theme"] for t in profile["themes_offered"]}
        ),
        "needs_answered": doc["needs"] is not None,
        "qualified": None if qualification is None else qualification["qualified"],
        "doc": doc,
    }
