"""PostgreSQL connection pools as Binome uses them.

A pooled connection keeps no session state: Binome's code takes
transaction-scoped locks only (``pg_advisory_xact_lock``), sets nothing with
``SET``, and whatever needs a session of its own (the outbox relay's
advisory lock and ``LISTEN``) opens a connection outside the pool
(``tests/unit/test_session_state.py`` keeps it so). A connection can then go
back to the pool without asyncpg's reset query (``pg_advisory_unlock_all``,
``UNLISTEN *``, ``RESET ALL``...): one round trip and a quarter of a single
append's CPU saved on every use. asyncpg still rolls back a transaction left
open and drops listeners before it releases a connection.

A database that is down must answer fast, not hold requests: a dead server
refuses at once, a new connection to a hung one gives up after
``CONNECT_TIMEOUT_S`` and a wait for a free pooled connection after
``ACQUIRE_TIMEOUT_S`` (both ``TimeoutError``, which the API answers with 503
+ ``Retry-After``; workers retry with backoff). A connection the server
dropped is replaced by the pool on its next use.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

CONNECT_TIMEOUT_S = 5.0
ACQUIRE_TIMEOUT_S = 10.0


class _Pool(asyncpg.Pool):
    """asyncpg's pool with a default timeout on ``acquire`` (asyncpg has none:
    callers would wait for ever behind connections stuck on a hung server)."""

    def acquire(self, *, timeout: float | None = None):  # type: ignore[override]
        return super().acquire(timeout=ACQUIRE_TIMEOUT_S if timeout is None else timeout)


async def create_pool(
    dsn: str, *, min_size: int = 2, max_size: int = 20, server_settings: dict[str, str] | None = None
) -> asyncpg.Pool:
    """``server_settings``: what every connection of the pool starts its
    session with, the same for all of them (the HTTP workers' connections
    say that their process announces their writes: libs/api/held_reads.py)."""
    # What asyncpg.create_pool passes (its defaults), with our class.
    return await _Pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        reset=_keep_session,
        timeout=CONNECT_TIMEOUT_S,
        **({} if server_settings is None else {"server_settings": server_settings}),
    )


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Release without the reset query: there is no session state to clear."""


def jsonb(value: Any) -> str:
    """``value`` as the text of a ``jsonb`` parameter (``$1::jsonb``): orjson,
    which also writes UUIDs and datetimes."""
    return orjson.dumps(value).decode()


class Where:
    """A WHERE clause built from optional filters, with numbered parameters:
    ``w.add(f"country = {w.param(country)}")`` or ``w.add("country = $?", country)``,
    then ``w.sql()`` and ``*w.args``."""

    def __init__(self) -> None:
        self.terms: list[str] = []
        self.args: list[Any] = []

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, term: str, *values: Any) -> None:
        """``term``, its ``$?`` placeholders numbered for ``values``, in order."""
        for value in values:
            term = term.replace("$?", self.param(value), 1)
        self.terms.append(term)

    def sql(self) -> str:
        return " AND ".join(self.terms) or "true"

    __str__ = sql  # f"... WHERE {where}"
