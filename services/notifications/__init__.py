"""The notifications service: what Binome tells people (e-mail in their
language, calendar invites, reminders on the platform clock) and HR
platforms (signed webhooks). Learns participants, pairs, sessions and surveys
from the other contexts' events; emits ``MessageQueued``,
``MessageDelivered``, ``DeliveryFailed``, ``WebhookDelivered`` and
``WebhookDeliveryFailed`` on topic ``binome.notifications.events``.

    domain/         message kinds, who hears what, preferences; pure Python
    service_layer/  queueing and delivering messages, the scheduler of due jobs
    adapters/       SMTP / mail folder, templates, iCalendar, tables
    consumers/      the consumers of other contexts' events (one module each)
    entrypoints/    the FastAPI app (/v1) and its request/response models
    migrations/     the tables ({schema} = the service's schema); 0001-0009
                    messages to people, 0010 and up webhooks
"""

from __future__ import annotations

from pathlib import Path

from libs.runtime.service import ServiceContext, ServiceDefinition
from services.notifications.consumers.webhook_fanout import WebhookFanout
from services.notifications.entrypoints.api import create_app
from services.notifications.service_layer.webhook_delivery import WebhookDeliverer
from services.notifications.service_layer.webhook_endpoints import Secrets


def projections(ctx: ServiceContext) -> list:
    return [
        WebhookFanout(ctx.store.schema, clock=ctx.clock),  # every context's events -> due webhook deliveries
    ]


def workers(ctx: ServiceContext) -> list:
    if ctx.vault is None:
        return []
    deliverer = WebhookDeliverer(
        ctx.pool, ctx.store, Secrets(ctx.vault), ctx.clock, dev_mode=ctx.settings.in_dev_mode
    )
    return [
        ("webhook deliveries", deliverer.run),  # due deliveries -> signed POSTs, retried on the platform clock
    ]


SERVICE = ServiceDefinition(
    "notifications",
    create_app,
    migrations=Path(__file__).parent / "migrations",
    projections=projections,
    workers=workers,
)
