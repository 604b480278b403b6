"""A database of its own on the test server, for tests that use the services'
real schema names or must not see other tests' transactions."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg

from libs.embedded.postgres import ensure_database


@contextlib.asynccontextmanager
async def fresh_database(database_url: str, prefix: str = "t") -> AsyncIterator[str]:
    """Create a uniquely named database on ``database_url``'s server; yield its
    URL; drop it (and any connection left to it) afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        yield await ensure_database(database_url, name)
    finally:
        admin = await asyncpg.connect(database_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
