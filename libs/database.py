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
refuses at once, and a new connection to a hung one gives up after
``CONNECT_TIMEOUT_S`` (``TimeoutError``, which the API answers with 503 +
``Retry-After``; workers retry with backoff). A connection the server
dropped is replaced by the pool on its next use. A caller that bounds its wait
for a pooled connection (``pool.acquire(timeout=...)``) gets ``TimeoutError``
too, answered the same way.
"""

from __future__ import annotations

import asyncpg


CONNECT_TIMEOUT_S = 5.0


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, reset=_keep_session, timeout=CONNECT_TIMEOUT_S
    )


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Release without the reset query: there is no session state to clear."""
