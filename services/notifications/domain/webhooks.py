"""Webhooks to HR platforms, the pure part: which events an endpoint gets,
what a delivery carries, how it is signed, when it is tried again.

*What an endpoint gets.* Its organisation's events (the envelope's
``tenant``) whose type matches one of its ``event_types`` (an exact type,
a type without its version, or a prefix ending in ``*``), and for a
committee's endpoint (``countries`` set) only events of those countries (the
envelope's ``country``; an event of no country is organisation-wide, which a
committee does not see, as in the API). The notifications context's own
events are never pushed (a delivery would cause a delivery), nor the
platform's health probes.

*What a delivery carries.* The event as a CloudEvents 1.0 JSON document in
structured mode, as stored in the log, *without its personal fields*: the
fields an event model seals at rest (``DomainEvent.personal_fields``: names,
e-mail addresses, motivations, notes...) are left out of ``data`` and listed
in the extension attribute ``withheld`` (comma-separated). A receiver reads
them through the API, which applies the caller's rights and erasure; so a
sealed value is never sent open, an erased person's data is never sent, and
nothing sent has to be recalled when someone is erased.

*Signing* follows Standard Webhooks: ``webhook-id`` (the delivery id, the
same on every retry: receivers deduplicate on it), ``webhook-timestamp``
(the real wall clock, never the dev clock: receivers check it) and
``webhook-signature``, one ``v1,<base64>`` per active secret (the current
one, and the previous one during a rotation's overlap).
"""

from __future__ import annotations

import base64
import secrets as random
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from standardwebhooks import Webhook

from libs.events.envelope import Envelope
from libs.events.registry import EventRegistry

#: Waits after the 1st, 2nd... failed attempt: 8 attempts over about 27 h,
#: then the delivery is failed.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
#: An endpoint failing (no 2xx) for this long is disabled.
DISABLE_AFTER = timedelta(days=1)
#: How long the previous secret still signs after a rotation.
ROTATION_OVERLAP = timedelta(hours=24)
#: Contexts whose events are never pushed: this one's (a delivery would
#: cause a delivery) and the platform's health probes (no business fact).
NOT_PUSHED = frozenset({"notifications", "platform"})
#: The CloudEvents extension attribute naming the fields left out.
WITHHELD = "withheld"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode()


def next_due(attempts: int, now: datetime) -> datetime | None:
    """When to try again after ``attempts`` failed attempts; None: give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return now + RETRY_SCHEDULE[attempts - 1]


def pattern_error(pattern: str, events: EventRegistry) -> str | None:
    """Why ``pattern`` names no event type, or None."""
    if not any(_matches(pattern, t) for t in events.models if t.split(".")[1] not in NOT_PUSHED):
        return f"{pattern!r} matches no event type (an exact type, a type without version, or a prefix ending in '*')"
    return None


def _matches(pattern: str, event_type: str) -> bool:
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return event_type == pattern or event_type.rsplit(".", 1)[0] == pattern


def wants(
    envelope: Envelope, *, organisation: str, event_types: Iterable[str], countries: Sequence[str] | None
) -> bool:
    """Does an endpoint with these settings get ``envelope``?"""
    if envelope.tenant != organisation or envelope.context in NOT_PUSHED:
        return False
    if countries is not None and (envelope.country or "").upper() not in countries:
        return False
    return any(_matches(p, envelope.type) for p in event_types)


def body_of(envelope: Envelope, events: EventRegistry) -> dict[str, Any]:
    """The CloudEvent sent: the envelope with its personal fields withheld."""
    document = envelope.model_dump(mode="json", exclude_none=True)
    model = events.models.get(envelope.type)
    withheld = sorted(model.personal_fields & envelope.data.keys()) if model is not None else []
    if withheld:
        document["data"] = {k: v for k, v in envelope.data.items() if k not in withheld}
        document[WITHHELD] = ",".join(withheld)
    return document


def signature(secrets: Iterable[str], message_id: str, timestamp: datetime, payload: str) -> str:
    """The ``webhook-signature`` header: one signature per active secret."""
    return " ".join(Webhook(s).sign(message_id, timestamp, payload) for s in secrets)


def signed_headers(secrets: Iterable[str], message_id: str, timestamp: datetime, payload: str) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature(secrets, message_id, timestamp, payload),
        "content-type": CONTENT_TYPE,
    }
