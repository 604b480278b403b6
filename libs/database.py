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
"""

from __future__ import annotations

import asyncpg


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, reset=_keep_session)


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Release without the reset query: there is no session state to clear."""
