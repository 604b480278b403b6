"""Events of the notifications context: what Binome told people and HR
platforms. Emitted by ``services/notifications`` on topic
``binome.notifications.events``; they carry metadata only (who, which kind,
which status), never a message body nor an address.

A message to a person is its own stream (``subject`` = ``message_id``)::

    MessageQueued ─┬─> MessageDelivered
                   └─> DeliveryFailed (permanent: retries exhausted or refused)

A webhook delivery is its own stream (``subject`` = ``delivery_id``)::

    WebhookDelivered | WebhookDeliveryFailed

``source_event_id`` is the id of the event that caused the message (or, for
scheduled messages such as the 24 h notice, a stable id of the due job), so
that (source event, recipient, kind) names one message once.
"""

from __future__ import annotations

from uuid import UUID

from libs.events.registry import DomainEvent, event

CONTEXT = "notifications"


# --------------------------------------------------------------------------- messages to people


class MessageEvent(DomainEvent):
    """A message to one recipient (a participant, or a committee for digests).

    ``recipient_id`` is the participant id (or the committee's name for a
    committee digest); ``country`` is the country the message is about, which
    the delivery log filters on for committees."""

    message_id: UUID
    recipient_id: str
    kind: str  # e.g. session_scheduled, session_reminder, survey_overdue
    country: str


@event(CONTEXT, "MessageQueued", version=1)
class MessageQueued(MessageEvent):
    """A message was rendered and is waiting for the mail server."""

    channel: str  # email
    language: str  # ISO 639-1 of the rendered templates
    source_event_id: str
    with_invite: bool  # carries an iCalendar part


@event(CONTEXT, "MessageDelivered", version=1)
class MessageDelivered(MessageEvent):
    """The mail server (or the local mail folder) accepted the message."""

    attempts: int


@event(CONTEXT, "DeliveryFailed", version=1)
class DeliveryFailed(MessageEvent):
    """The message could not be delivered and will not be tried again;
    ``error`` is the mail server's answer or the connection error (no
    personal data)."""

    attempts: int
    error: str


# --------------------------------------------------------------------------- webhooks to HR platforms


class WebhookEvent(DomainEvent):
    """One event pushed to one registered endpoint of an organisation."""

    delivery_id: UUID
    endpoint_id: UUID
    #: The CloudEvents ``id`` and ``type`` of the event pushed (``event_type``
    #: would hide ``DomainEvent.event_type``).
    delivered_event_id: str
    delivered_event_type: str


@event(CONTEXT, "WebhookDelivered", version=1)
class WebhookDelivered(WebhookEvent):
    """The endpoint answered 2xx."""

    attempts: int
    status_code: int


@event(CONTEXT, "WebhookDeliveryFailed", version=1)
class WebhookDeliveryFailed(WebhookEvent):
    """Retries are exhausted; ``endpoint_disabled`` says the endpoint was
    disabled because it kept failing."""

    attempts: int
    error: str
    endpoint_disabled: bool = False
