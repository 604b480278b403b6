"""The webhook delivery worker: due deliveries -> signed POSTs -> outcomes.

1. In one transaction, claim one due delivery (``status = 'pending'``,
   ``due_at`` not after the platform clock's now, its endpoint enabled) with
   ``FOR UPDATE SKIP LOCKED``: a second instance of the platform claims
   another row, never the same one, so each delivery is sent by one worker.
2. Sign its stored body with the endpoint's active secrets (Standard
   Webhooks; the timestamp is the wall clock) and POST it
   (adapters/webhook_http.py checks the address again first).
3. Record the outcome in the same transaction and append
   ``WebhookDelivered`` or, once retries are exhausted,
   ``WebhookDeliveryFailed`` to the service's log: a 2xx is delivered; any
   other answer is due again after ``RETRY_SCHEDULE`` (about a day in all),
   then failed. An endpoint with no 2xx for ``DISABLE_AFTER`` is disabled,
   with the reason kept for its owner (``disabled_reason``); its pending
   deliveries wait until it is enabled again.

A crash between the POST and the commit rolls the claim back: the delivery is
sent again with the same ``webhook-id`` (at least once; receivers deduplicate
on it). Everything lives in the table, so a restart resumes where it was.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from libs.events.contexts.notifications import WebhookDelivered, WebhookDeliveryFailed
from libs.events.registry import DomainEvent, new_envelope
from libs.eventstore.store import EventStore
from libs.retry import sleep_unless_stopped
from libs.runtime.clock import Clock
from services.notifications.adapters.webhook_http import Answer, WebhookHttp
from services.notifications.domain.webhooks import DISABLE_AFTER, next_due, signed_headers
from services.notifications.service_layer.webhook_endpoints import Secrets, active

log = logging.getLogger(__name__)

SERVICE = "notifications"


class WebhookDeliverer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: EventStore,
        secrets: Secrets,
        clock: Clock,
        *,
        dev_mode: bool,
        parallel: int = 4,
        poll_s: float = 1.0,
    ) -> None:
        self.pool, self.store, self.secrets, self.clock = pool, store, secrets, clock
        self.dev_mode, self.parallel, self.poll_s = dev_mode, parallel, poll_s
        self._http: WebhookHttp | None = None
        s = store.schema
        self._sql_claim = f"""
            SELECT d.delivery_id, d.endpoint_id, d.organisation, d.event_id, d.event_type, d.body::text AS body,
                   d.attempts, e.url, e.secret, e.previous_secret, e.previous_secret_until
            FROM {s}.webhook_deliveries d JOIN {s}.webhook_endpoints e USING (endpoint_id)
            WHERE d.status = 'pending' AND d.due_at <= $1 AND e.enabled
            ORDER BY d.due_at LIMIT 1
            FOR UPDATE OF d SKIP LOCKED"""

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver what is due until ``stop``; poll when nothing is."""
        try:
            while not stop.is_set():
                if not await self.deliver_due():
                    await sleep_unless_stopped(stop, self.poll_s)
        finally:
            await self.aclose()

    @property
    def http(self) -> WebhookHttp:
        if self._http is None:  # made in the worker's loop, not where the worker is declared
            self._http = WebhookHttp(dev_mode=self.dev_mode)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    async def deliver_due(self) -> int:
        """Deliver every delivery due now (``parallel`` at a time); how many were tried."""
        return sum(await asyncio.gather(*(self._drain() for _ in range(self.parallel))))

    async def _drain(self) -> int:
        tried = 0
        while await self.deliver_one():
            tried += 1
        return tried

    async def deliver_one(self) -> bool:
        """Try one due delivery; False when none is due."""
        async with self.pool.acquire() as conn, conn.transaction():
            now = self.clock()
            row = await conn.fetchrow(self._sql_claim, now)
            if row is None:
                return False
            vault_conn = conn if self.secrets.vault.pool is self.pool else None
            secrets = await self.secrets.open(row["endpoint_id"], *active(row, now), conn=vault_conn)
            headers = signed_headers(secrets, str(row["delivery_id"]), datetime.now(UTC), row["body"])
            answer = await self.http.post(row["url"], row["body"].encode(), headers)
            await self._record(conn, row, answer, now)
        return True

    async def _record(self, conn: asyncpg.Connection, row: asyncpg.Record, answer: Answer, now: datetime) -> None:
        s, attempts = self.store.schema, row["attempts"] + 1
        if answer.ok:
            await conn.execute(
                f"""UPDATE {s}.webhook_deliveries SET status = 'delivered', attempts = $2, last_attempt_at = $3,
                        delivered_at = $3, last_status_code = $4, last_error = NULL WHERE delivery_id = $1""",
                row["delivery_id"], attempts, now, answer.status_code,
            )
            await conn.execute(
                f"UPDATE {s}.webhook_endpoints SET failing_since = NULL WHERE endpoint_id = $1", row["endpoint_id"]
            )
            await self._emit(conn, row, WebhookDelivered(**refs(row), attempts=attempts, status_code=answer.status_code))
            return
        error = answer.error or "no answer"
        failing_since = await conn.fetchval(
            f"""UPDATE {s}.webhook_endpoints SET failing_since = coalesce(failing_since, $2)
                WHERE endpoint_id = $1 RETURNING failing_since""",
            row["endpoint_id"], now,
        )
        disable = now - failing_since >= DISABLE_AFTER
        due = None if disable else next_due(attempts, now)
        await conn.execute(
            f"""UPDATE {s}.webhook_deliveries SET status = $2, attempts = $3, due_at = coalesce($4, due_at),
                    last_attempt_at = $5, last_status_code = $6, last_error = $7 WHERE delivery_id = $1""",
            row["delivery_id"], "failed" if due is None else "pending", attempts, due, now, answer.status_code, error,
        )
        if disable:
            reason = f"no successful delivery since {failing_since.isoformat()}; last error: {error}"
            await conn.execute(
                f"""UPDATE {s}.webhook_endpoints SET enabled = false, disabled_reason = $2, disabled_at = $3
                    WHERE endpoint_id = $1""",
                row["endpoint_id"], reason, now,
            )
            log.warning("webhook endpoint %s disabled: %s", row["endpoint_id"], reason)
        if due is None:
            failed = WebhookDeliveryFailed(**refs(row), attempts=attempts, error=error, endpoint_disabled=disable)
            await self._emit(conn, row, failed)

    async def _emit(self, conn: asyncpg.Connection, row: asyncpg.Record, event: DomainEvent) -> None:
        envelope = new_envelope(event, service=SERVICE, subject=str(row["delivery_id"]), tenant=row["organisation"])
        await self.store.append(str(row["delivery_id"]), None, [envelope], conn=conn)


def refs(row: asyncpg.Record) -> dict[str, Any]:
    """What every webhook event says about its delivery."""
    return {
        "delivery_id": row["delivery_id"],
        "endpoint_id": row["endpoint_id"],
        "delivered_event_id": str(row["event_id"]),
        "delivered_event_type": row["event_type"],
    }


def ping_body(endpoint_id: uuid.UUID, organisation: str, now: datetime) -> dict[str, Any]:
    """The CloudEvent of a test ping (never stored nor retried)."""
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": f"/binome/{SERVICE}",
        "type": "binome.notifications.WebhookPing.v1",
        "subject": str(endpoint_id),
        "time": now.isoformat(),
        "datacontenttype": "application/json",
        "data": {"endpoint_id": str(endpoint_id)},
        "tenant": organisation,
    }
