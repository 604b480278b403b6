"""The notifications service: what Binome tells people (e-mail in their
language, calendar invites, reminders on the platform clock) and HR
platforms (signed webhooks). Learns participants, pairs, sessions and surveys
from the other contexts' events; emits ``MessageQueued``,
``MessageDelivered``, ``DeliveryFailed``, ``WebhookDelivered`` and
``WebhookDeliveryFailed`` on topic ``binome.notifications.events``.

    domain/         message kinds, who may turn what off, languages; pure Python
    service_layer/  queueing messages, delivering them, the scheduler of due jobs
    adapters/       templates (Jinja2 + Babel), iCalendar invites, MIME, the mail server or folder
    consumers/      the consumers of other contexts' events (one module each)
    entrypoints/    the FastAPI app (/v1) and its request/response models
    migrations/     the tables ({schema} = the service's schema); 0001-0009
                    messages to people, 0010 and up webhooks
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from libs.gdpr.compaction import compaction_workers
from libs.runtime.service import ServiceContext, ServiceDefinition
from services.notifications.bootstrap import Notifications
from services.notifications.consumers.webhook_fanout import WebhookFanout
from services.notifications.entrypoints.api import create_app
from services.notifications.service_layer.webhook_delivery import WebhookDeliverer
from services.notifications.service_layer.webhook_endpoints import Secrets


def projections(ctx: ServiceContext) -> list[Any]:
    parts = Notifications.build(ctx)
    return [
        parts.people,  # participants, pairs, sessions, surveys -> messages to people
        parts.committees,  # insights' pairs needing attention -> each committee's daily digest
        WebhookFanout(ctx.store.schema, clock=ctx.clock),  # every context's events -> due webhook deliveries
    ]


def workers(ctx: ServiceContext) -> list[tuple[str, Callable[[asyncio.Event], Awaitable[None]]]]:
    parts = Notifications.build(ctx)
    found: list[tuple[str, Callable[[asyncio.Event], Awaitable[None]]]] = [
        ("message delivery", parts.delivery.run),
        ("notification scheduler", parts.scheduler.run),
        *compaction_workers(ctx, projections(ctx)),
    ]
    if ctx.vault is not None:  # webhook secrets are sealed in the vault
        deliverer = WebhookDeliverer(ctx.pool, ctx.store, Secrets(ctx.vault), ctx.clock, dev_mode=ctx.settings.in_dev_mode)
        found.append(("webhook deliveries", deliverer.run))  # due deliveries -> signed POSTs, retried on the platform clock
    return found


SERVICE = ServiceDefinition(
    "notifications",
    create_app,
    migrations=Path(__file__).parent / "migrations",
    projections=projections,
    exports_personal_data=True,
    workers=workers,
)
