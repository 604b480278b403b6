"""Reading the audit trail of a running platform from outside (asyncpg to its database)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.support.platform_process import PlatformProcess, eventually


def audit_rows(
    platform: PlatformProcess, schema: str, correlation_ids: list[str], *, expect: int | None = None
) -> dict[str, dict[str, Any]]:
    """The audit rows of ``schema`` with these correlation ids, by id, once
    ``expect`` of them (default: all) are there: a record is written after
    its response is sent."""

    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(platform.database_url)
        try:
            return await conn.fetch(
                f"SELECT * FROM {schema}.audit_log WHERE correlation_id = ANY($1::text[])", correlation_ids
            )
        finally:
            await conn.close()

    def found() -> dict[str, dict[str, Any]] | None:
        rows = {r["correlation_id"]: dict(r) for r in asyncio.run(fetch())}
        return rows if len(rows) >= (len(correlation_ids) if expect is None else expect) else None

    return eventually(found, timeout=10, what=f"audit rows in {schema}")
