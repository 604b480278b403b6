"""Wires the notifications service's parts over one store schema: the
message queue, the consumer that fills it, the scheduler of due jobs and the
delivery worker (the tests build theirs over a test schema, with a clock
they move and a mail server of their own)."""

from __future__ import annotations

from dataclasses import dataclass

from libs.runtime.service import ServiceContext
from services.notifications.adapters.mail import Mailer, mailer_from
from services.notifications.consumers.committees import Committees
from services.notifications.consumers.people import People
from services.notifications.service_layer.delivery import Delivery
from services.notifications.service_layer.messages import Messages
from services.notifications.service_layer.scheduler import Scheduler


@dataclass
class Notifications:
    messages: Messages
    scheduler: Scheduler
    delivery: Delivery
    people: People
    committees: Committees

    @classmethod
    def build(cls, ctx: ServiceContext, mailer: Mailer | None = None) -> Notifications:
        settings = ctx.settings
        messages = Messages(ctx.store, settings.mail_from, ctx.clock)
        scheduler = Scheduler(ctx.pool, messages, ctx.clock, settings.notifications_poll_interval_s)
        delivery = Delivery(
            ctx.pool,
            ctx.store,
            mailer or mailer_from(settings.smtp_url, settings.data_dir),
            ctx.clock,
            max_attempts=settings.mail_max_attempts,
            poll_interval_s=settings.notifications_poll_interval_s,
        )
        return cls(messages, scheduler, delivery, People(messages, scheduler), Committees(scheduler.digests, scheduler))
