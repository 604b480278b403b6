"""Versioned SQL migrations, one schema per service.

Migration files are ``NNNN_name.sql`` with ``{schema}`` placeholders. The
event-store files (this package) come first, then the service's own. Each
applied file is recorded with its checksum; a changed file is an error, not a
silent re-run. An advisory lock makes concurrent start-ups safe.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

EVENT_STORE_MIGRATIONS = Path(__file__).parent / "migrations"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def check_schema_name(schema: str) -> str:
    """Schema names are interpolated into SQL: allow identifiers only."""
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


def load_migrations(*directories: Path) -> list[Migration]:
    migrations: list[Migration] = []
    for prefix, directory in enumerate(directories):
        for path in sorted(directory.glob("*.sql")):
            # The directory index keeps event-store files before service files.
            migrations.append(Migration(f"{prefix}:{path.name}", path.read_text()))
    return migrations


async def migrate(conn: asyncpg.Connection, schema: str, *service_dirs: Path) -> list[str]:
    """Apply pending event-store and service migrations to ``schema``; return
    the names applied."""
    return await migrate_directories(conn, schema, EVENT_STORE_MIGRATIONS, *service_dirs)


async def migrate_directories(conn: asyncpg.Connection, schema: str, *directories: Path) -> list[str]:
    """Apply pending migrations of ``directories`` (in that order) to ``schema``."""
    check_schema_name(schema)
    migrations = load_migrations(*directories)
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"binome.migrate.{schema}")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                    name text PRIMARY KEY,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["name"]: r["checksum"] for r in await conn.fetch(f"SELECT name, checksum FROM {schema}.schema_migrations")}
        for migration in migrations:
            if migration.name in done:
                if done[migration.name] != migration.checksum:
                    raise MigrationError(f"{schema}: migration {migration.name} changed after it was applied")
                continue
            await conn.execute(migration.sql.replace("{schema}", schema))
            await conn.execute(
                f"INSERT INTO {schema}.schema_migrations (name, checksum) VALUES ($1, $2)",
                migration.name,
                migration.checksum,
            )
            applied_now.append(migration.name)
    return applied_now
