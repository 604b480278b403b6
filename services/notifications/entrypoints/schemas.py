"""Request and response models of the notifications API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from libs.api.dates import TimeZone

from services.notifications.domain.kinds import LANGUAGES, NON_ESSENTIAL, Kind

Language = Literal[LANGUAGES]  # type: ignore[valid-type]
NonEssentialKind = Literal[tuple(sorted(k.value for k in NON_ESSENTIAL))]  # type: ignore[valid-type]
MessageStatus = Literal["queued", "delivered", "failed", "withdrawn"]


class PreferencesIn(BaseModel):
    """The whole new set of preferences."""

    model_config = ConfigDict(extra="forbid")

    #: The language of messages; null: the first language of the enrolment profile Binome writes in.
    language: Language | None = None
    #: Non-essential kinds to turn off (session invites, proposals and pair changes cannot be).
    muted_kinds: list[NonEssentialKind] = Field(default_factory=list, max_length=len(NON_ESSENTIAL))


class PreferencesOut(BaseModel):
    participant_id: UUID
    #: The language chosen for messages; None: from the enrolment profile.
    language: str | None
    #: Non-essential kinds the participant turned off.
    muted_kinds: list[str]
    updated_at: datetime | None


class MessageOut(BaseModel):
    """One message of the delivery log: metadata only, never the body."""

    message_id: UUID
    recipient_id: UUID
    kind: Kind
    country: str
    language: str
    with_invite: bool
    status: MessageStatus
    attempts: int
    last_error: str | None
    queued_at: datetime
    finished_at: datetime | None


class MessagesSummary(BaseModel):
    """How many messages the caller's log holds, per status, and where they go."""

    queued: int
    delivered: int
    failed: int
    withdrawn: int
    #: Messages carrying a calendar invite (any status).
    invites: int
    #: The mail server (``smtp://host:port``), or without one the folder of ``.eml`` files.
    delivered_to: str


def _mail_address(value: str) -> str:
    """A mail address a digest can go to. Its form is ``format: email``; a
    special-use domain (``.test``, ``.example``, ``.invalid``, ...) is a rule
    no schema states, so its refusal is of type ``rule``."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise PydanticCustomError("rule", "value is not a valid email address: {reason}", {"reason": str(exc)}) from None


Address = Annotated[str, AfterValidator(_mail_address), Field(json_schema_extra={"format": "email"})]


class CommitteeContactsIn(BaseModel):
    """Who reads the committee's digest: the whole new list (empty: nobody)."""

    model_config = ConfigDict(extra="forbid")

    #: The addresses the daily digest goes to (one mail, every address in To).
    addresses: list[Address] = Field(max_length=20)
    #: The language of the digest.
    language: Language = "en"
    #: The IANA time zone the digest's dates are written in.
    time_zone: TimeZone = "UTC"

    @field_validator("addresses")
    @classmethod
    def _distinct(cls, addresses: list[str]) -> list[str]:
        lowered = [a.lower() for a in addresses]
        if len(set(lowered)) != len(lowered):
            raise ValueError("an address is listed twice")
        return addresses


class CommitteeContactsOut(BaseModel):
    """A committee's contacts (none set yet: no address, English, UTC)."""

    country: str
    #: The committee as the delivery log names it (``recipient_id`` of its digests).
    committee_id: UUID
    addresses: list[str]
    language: str
    time_zone: str
    updated_at: datetime | None
