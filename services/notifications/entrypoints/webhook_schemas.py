"""Request and response models of the webhook routes (entrypoints/webhooks.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.api.patch import partial_model

Pattern = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^(\*|binome\.[A-Za-z0-9_.]*\*?)$")]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Description = Annotated[str, StringConstraints(max_length=500)]
Status = Literal["pending", "delivered", "failed"]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url = Field(description="Where to POST; https outside dev mode, a public host (no loopback, private or link-local address).")
    event_types: list[Pattern] = Field(
        min_length=1,
        max_length=50,
        description="Event types it wants: an exact type (binome.matching.PairFormed.v1), a type without its "
        "version (binome.matching.PairFormed), or a prefix ending in '*' (binome.sessions.*, or * for all).",
    )
    countries: list[Country] | None = Field(
        None,
        min_length=1,
        max_length=300,
        description="Only events of these countries (ISO 3166-1 alpha-2). Required for a regional committee "
        "(its own countries); an HR admin may leave it out for every event of the organisation.",
    )
    description: Description | None = None


class EndpointChange(BaseModel):
    """What may change; countries never do (register another endpoint)."""

    model_config = ConfigDict(extra="forbid")

    url: Url
    event_types: list[Pattern] = Field(min_length=1, max_length=50)
    description: Description | None = None
    enabled: bool = Field(description="false disables it; true enables it again and clears why it was disabled.")


#: A PATCH body: any of EndpointChange's fields, null only for description.
EndpointPatch = partial_model(EndpointChange, "EndpointPatch")


class EndpointOut(BaseModel):
    endpoint_id: UUID
    url: str
    event_types: list[str]
    #: None: every event of the organisation.
    countries: list[str] | None
    description: str | None
    enabled: bool
    #: Why it was disabled (by whom, or the failures that disabled it).
    disabled_reason: str | None
    disabled_at: datetime | None
    #: Since when no delivery succeeded (None: healthy).
    failing_since: datetime | None
    #: Until when the previous secret still signs (after a rotation).
    previous_secret_until: datetime | None
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


class EndpointWithSecret(EndpointOut):
    #: The signing secret (Standard Webhooks, ``whsec_...``): shown once.
    #: None on an Idempotency-Key replay: rotate the secret if it was lost.
    secret: str | None


class DeliveryOut(BaseModel):
    delivery_id: UUID
    endpoint_id: UUID
    event_id: UUID
    event_type: str
    status: Status
    attempts: int
    #: When it is (or was last) due, on the platform clock.
    due_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class Redelivered(BaseModel):
    #: How many failed deliveries are due again.
    queued: int


class PingOut(BaseModel):
    ok: bool
    status_code: int | None
    error: str | None
