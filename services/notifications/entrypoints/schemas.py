"""Request and response models of the notifications API."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel


class PreferencesOut(BaseModel):
    participant_id: UUID
    #: The language chosen for messages; None: from the enrolment profile.
    language: str | None
    #: Non-essential kinds the participant turned off.
    muted_kinds: list[str]
    updated_at: datetime | None
