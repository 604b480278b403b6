"""``Idempotency-Key`` for POST (and PATCH) requests.

A client that may retry a request (timeout, lost reply) sends a unique
``Idempotency-Key`` header. The first request runs; its response is stored
*in the same database transaction as the command*, so "the command happened"
and "its response is stored" are one fact. Then:

* same key, same request (method, path, query, body) -> the stored response,
  with ``Idempotent-Replayed: true``; nothing runs again;
* same key, another request -> 422 ``urn:binome:problem:idempotency-key-reused``
  (draft-ietf-httpapi-idempotency-key-header), nothing runs;
* same key while the first request is still running -> the second waits for
  the first to commit (the key's row is claimed first, and PostgreSQL makes
  a conflicting insert wait), then gets the stored response;
* a request that fails (4xx/5xx) rolls back with its claim, so nothing is
  stored and a retry with the same key runs afresh.

Keys are scoped to the caller (organisation and subject) and expire after
``ttl`` (24 h by default); the table comes from the shared migration
``libs/eventstore/migrations/0002_idempotency_keys.sql``.

    keys = IdempotencyKeys(schema)

    @router.post("/v1/things", status_code=201)
    async def create(body: ThingIn, key: IdempotencyKey | None = Depends(idempotency_key)):
        async def work(conn) -> JSONResponse: ...
        return await run_idempotently(pool, keys, key, work)
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import orjson
from fastapi import Depends, Request
from fastapi.responses import Response

from libs.api.problems import Problem, invalid
from libs.api.security import current_principal
from libs.auth.principal import Principal
from libs.eventstore.migrations import check_schema_name

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_REUSED = "urn:binome:problem:idempotency-key-reused"
MAX_KEY_LENGTH = 255
#: Response headers worth replaying (the body's type, where it lives, its version).
STORED_HEADERS = ("content-type", "location", "etag")


@dataclass(frozen=True)
class IdempotencyKey:
    owner: str  # ["organisation", "subject"]: one caller's keys never meet another's
    key: str
    fingerprint: str  # of method, path, query and body


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query.encode()):
        digest.update(part + b"\0")
    digest.update(body)
    return digest.hexdigest()


def check_key(value: str) -> str:
    """A key is 1-255 visible ASCII characters (a UUID is the usual choice)."""
    if not 0 < len(value) <= MAX_KEY_LENGTH or not all(33 <= ord(c) <= 126 for c in value):
        raise invalid(
            [
                {
                    "field": f"header.{HEADER}",
                    "message": f"Must be 1 to {MAX_KEY_LENGTH} visible ASCII characters.",
                    "type": "value_error",
                }
            ]
        )
    return value


async def idempotency_key(request: Request, principal: Principal = Depends(current_principal)) -> IdempotencyKey | None:
    """FastAPI dependency: the request's key, or None when it sent none."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    body = await request.body()  # Starlette caches it: the route still reads it
    return IdempotencyKey(
        owner=orjson.dumps([principal.organisation, principal.subject]).decode(),
        key=check_key(value),
        fingerprint=fingerprint(request.method, request.url.path, request.url.query, body),
    )


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def to_response(self) -> Response:
        return Response(self.body, status_code=self.status, headers={**self.headers, REPLAYED_HEADER: "true"})


class IdempotencyKeys:
    """The ``idempotency_keys`` table of one service schema."""

    def __init__(self, schema: str, *, ttl: timedelta = timedelta(hours=24)) -> None:
        s = check_schema_name(schema)
        self.ttl = ttl
        # Claim the key, or take over an expired claim. ON CONFLICT waits for
        # a concurrent transaction holding the same key to finish.
        self._sql_claim = f"""
            INSERT INTO {s}.idempotency_keys (owner, key, fingerprint, expires_at)
            VALUES ($1, $2, $3, clock_timestamp() + $4::interval)
            ON CONFLICT (owner, key) DO UPDATE
                SET fingerprint = EXCLUDED.fingerprint, expires_at = EXCLUDED.expires_at,
                    created_at = clock_timestamp(), status = NULL, headers = NULL, body = NULL
                WHERE {s}.idempotency_keys.expires_at < clock_timestamp()
            RETURNING true"""
        self._sql_get = f"""
            SELECT fingerprint, status, headers::text AS headers, body
            FROM {s}.idempotency_keys WHERE owner = $1 AND key = $2"""
        self._sql_complete = f"""
            UPDATE {s}.idempotency_keys SET status = $3, headers = $4::jsonb, body = $5
            WHERE owner = $1 AND key = $2"""
        self._sql_purge = f"DELETE FROM {s}.idempotency_keys WHERE expires_at < clock_timestamp()"
        self._sql_forget = f"DELETE FROM {s}.idempotency_keys WHERE position($1::bytea IN body) > 0"

    async def claim(self, conn: asyncpg.Connection, key: IdempotencyKey) -> StoredResponse | None:
        """Claim ``key`` inside the caller's transaction.

        None: the request is new and must run. A ``StoredResponse``: it ran
        already; answer with it. Raises a 422 problem if the key was used
        for another request.
        """
        if await conn.fetchval(self._sql_claim, key.owner, key.key, key.fingerprint, self.ttl):
            return None
        row = await conn.fetchrow(self._sql_get, key.owner, key.key)
        if row["fingerprint"] != key.fingerprint:
            raise Problem(
                422,
                title="Idempotency key reused",
                detail=f"This {HEADER} was used for another request; use a new key for a new request.",
                type=KEY_REUSED,
            )
        return StoredResponse(row["status"], orjson.loads(row["headers"]), bytes(row["body"]))

    async def complete(self, conn: asyncpg.Connection, key: IdempotencyKey, response: Response) -> None:
        headers = {k: v for k, v in response.headers.items() if k in STORED_HEADERS}
        await conn.execute(
            self._sql_complete,
            key.owner,
            key.key,
            response.status_code,
            orjson.dumps(headers).decode(),
            bytes(response.body),
        )

    async def forget(self, conn: asyncpg.Connection | asyncpg.Pool, object_id: str) -> int:
        """Drop stored responses that mention ``object_id`` (GDPR erasure: a
        stored response may hold the erased person's data)."""
        status = await conn.execute(self._sql_forget, object_id.encode())
        return int(status.split()[-1])

    async def purge_expired(self, conn: asyncpg.Connection | asyncpg.Pool) -> int:
        status = await conn.execute(self._sql_purge)
        return int(status.split()[-1])


async def run_idempotently(
    pool: asyncpg.Pool,
    keys: IdempotencyKeys,
    key: IdempotencyKey | None,
    work: Callable[[asyncpg.Connection], Awaitable[Response]],
) -> Response:
    """Run ``work`` in one transaction, with the key claimed and its response
    stored in that same transaction (or answer the stored response)."""
    async with pool.acquire() as conn, conn.transaction():
        if key is not None:
            stored = await keys.claim(conn, key)
            if stored is not None:
                return stored.to_response()
        response = await work(conn)
        if key is not None:
            await keys.complete(conn, key, response)
    return response
