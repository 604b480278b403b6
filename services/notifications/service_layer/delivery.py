"""Delivering queued messages to the mail server, at least once.

Every instance of the service runs this worker; each takes due messages with
``FOR UPDATE SKIP LOCKED``, so two instances never send the same message at
the same time. A message is marked delivered (and its body dropped) in the
transaction that took it, after the server accepted it: a crash between the
two sends it again (at least once). A refused try (any 4xx/5xx SMTP answer,
a connection error) is retried with exponential backoff
(``libs/retry.py``); after ``mail_max_attempts`` tries the message is failed
for good, its body dropped too, and ``DeliveryFailed`` tells HR.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import asyncpg

from libs.events.contexts.notifications import DeliveryFailed, MessageDelivered, MessageEvent
from libs.events.registry import new_envelope
from libs.eventstore.store import EventStore
from libs.retry import exponential_backoff, sleep_unless_stopped
from services.notifications.adapters.mail import UNREACHABLE, DeliveryError, Mailer
from services.notifications.service_layer.messages import SERVICE

log = logging.getLogger(__name__)

BATCH = 20


class Delivery:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: EventStore,
        mailer: Mailer,
        clock: Callable[[], datetime],
        *,
        max_attempts: int,
        poll_interval_s: float,
        backoff: Callable[[int], float] = exponential_backoff(multiplier=2, max=3600, jitter=1),
    ) -> None:
        self.pool, self.store, self.mailer, self.clock = pool, store, mailer, clock
        self.max_attempts, self.poll_interval_s, self.backoff = max_attempts, poll_interval_s, backoff
        s = store.schema
        self._sql_due = f"""
            SELECT message_id, organisation, country, recipient_id, kind, attempts, body FROM {s}.messages
            WHERE status = 'queued' AND next_attempt_at <= now()
            ORDER BY next_attempt_at LIMIT {BATCH} FOR UPDATE SKIP LOCKED"""
        self._sql_done = f"""
            UPDATE {s}.messages SET status = $2, attempts = $3, last_error = $4, body = NULL, finished_at = $5
            WHERE message_id = $1"""
        self._sql_retry = f"""
            UPDATE {s}.messages SET attempts = $2, last_error = $3,
                   next_attempt_at = now() + make_interval(secs => $4)
            WHERE message_id = $1"""

    async def run(self, stop: asyncio.Event) -> None:
        """``binome up``'s worker: deliver until stopped."""
        while not stop.is_set():
            if not await self.deliver_due():
                await sleep_unless_stopped(stop, self.poll_interval_s)

    async def deliver_due(self) -> int:
        """One pass over the due messages; returns how many were tried."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(self._sql_due)
            for row in rows:
                if not await self._try(conn, row):
                    break  # the server is unreachable: the others wait, untried, for the next pass
            return len(rows)

    async def _try(self, conn: asyncpg.Connection, row: asyncpg.Record) -> bool:
        """One try; False when the server could not be reached at all."""
        attempts = row["attempts"] + 1
        message: EmailMessage = email.message_from_bytes(row["body"], policy=email.policy.default)  # type: ignore[assignment]
        try:
            await self.mailer.send(message)
        except DeliveryError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            if attempts < self.max_attempts:
                log.info("message %s: try %d refused (%s), retrying", row["message_id"], attempts, error)
                await conn.execute(self._sql_retry, row["message_id"], attempts, error, self.backoff(attempts))
                return not isinstance(exc, UNREACHABLE)
            log.warning("message %s: failed after %d tries (%s)", row["message_id"], attempts, error)
            await conn.execute(self._sql_done, row["message_id"], "failed", attempts, error, self.clock())
            failed = DeliveryFailed(**self._about(row), attempts=attempts, error=error)
            await self._record(conn, row, failed, "failed")
            return not isinstance(exc, UNREACHABLE)
        await conn.execute(self._sql_done, row["message_id"], "delivered", attempts, None, self.clock())
        await self._record(conn, row, MessageDelivered(**self._about(row), attempts=attempts), "delivered")
        return True

    @staticmethod
    def _about(row: asyncpg.Record) -> dict[str, Any]:
        """The fields every event about a message has."""
        return {"message_id": row["message_id"], "recipient_id": str(row["recipient_id"]), "kind": row["kind"],
                "country": row["country"]}

    async def _record(self, conn: asyncpg.Connection, row: asyncpg.Record, event: MessageEvent, outcome: str) -> None:
        envelope = new_envelope(
            event,
            service=SERVICE,
            subject=str(row["message_id"]),
            tenant=row["organisation"],
            country=row["country"],
            event_id=uuid.uuid5(row["message_id"], outcome),
        )
        await self.store.append(str(row["message_id"]), None, [envelope], conn=conn)
