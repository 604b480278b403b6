"""The notifications service's part of a participant's GDPR export: the
address, name, languages and time zone it writes to, the preferences, and
the log of the messages sent to them (metadata: bodies are not kept)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from libs.auth.principal import Principal
from libs.gdpr.export import ExportPart


class RecipientExport(ExportPart):
    email: str
    display_name: str
    languages: list[str]
    time_zone: str


class PreferencesExport(ExportPart):
    language: str | None
    muted_kinds: list[str]
    updated_at: datetime


class MessageExport(ExportPart):
    """A message's metadata (its body is not kept once sent)."""

    message_id: UUID
    kind: str
    language: str
    with_invite: bool
    status: str
    attempts: int
    queued_at: datetime
    finished_at: datetime | None


class NotificationsExport(ExportPart):
    """Every field ``Export.collect`` returns (an undeclared one is an error)."""

    recipient: RecipientExport | None
    preferences: PreferencesExport | None
    messages: list[MessageExport]


class Export:
    def __init__(self, schema: str) -> None:
        self.schema = schema

    async def collect(self, pool: asyncpg.Pool, who: Principal, participant_id: UUID) -> dict[str, Any] | None:
        s = self.schema
        recipient = await pool.fetchrow(
            f"""SELECT email, display_name, languages, time_zone FROM {s}.recipients
                WHERE participant_id = $1 AND organisation = $2""",
            participant_id,
            who.organisation,
        )
        preferences = await pool.fetchrow(
            f"SELECT language, muted_kinds, updated_at FROM {s}.preferences WHERE participant_id = $1 AND organisation = $2",
            participant_id,
            who.organisation,
        )
        messages = await pool.fetch(
            f"""SELECT message_id, kind, language, with_invite, status, attempts, queued_at, finished_at
                FROM {s}.messages WHERE recipient_id = $1 AND organisation = $2 ORDER BY row_id""",
            participant_id,
            who.organisation,
        )
        if recipient is None and preferences is None and not messages:
            return None
        return {
            "recipient": dict(recipient) if recipient else None,
            "preferences": dict(preferences) if preferences else None,
            "messages": [dict(m) for m in messages],
        }
