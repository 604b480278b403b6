"""The statements the platform's PostgreSQL is sent, counted by the server
(pg_stat_statements): each is one round trip from a platform process
(asyncpg sends one statement at a time). Used by ``bench/api.py
--statements`` and by the system tests that hold a path to its round trips.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.platform_process import PlatformProcess


def preload_statement_counts(data_dir: Path) -> None:
    """Initialise the platform's embedded PostgreSQL before ``binome up``
    starts it, with pg_stat_statements loaded (an extension that must be
    preloaded): the server then counts every statement it is sent (top
    level only, its default: a foreign-key check inside an INSERT is not a
    round trip)."""
    from libs.embedded.postgres import EmbeddedPostgres

    server = EmbeddedPostgres(data_dir)
    server.prepare()  # initdb; binome up's own prepare leaves the configuration alone
    with (server.pgdata / "postgresql.conf").open("a") as conf:
        conf.write("\nshared_preload_libraries = 'pg_stat_statements'\n")


class StatementCounts:
    """Statements run by the platform's PostgreSQL (pg_stat_statements), by
    normalised text, its own look-ups left out. Each is one round trip
    from a process of the platform (asyncpg sends one statement at a time)."""

    def __init__(self, platform: PlatformProcess) -> None:
        self.platform = platform
        platform.sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def reset(self) -> None:
        self.platform.sql("SELECT pg_stat_statements_reset()")

    def read(self) -> dict[str, int]:
        rows = self.platform.sql(
            "SELECT query, sum(calls)::bigint AS calls FROM pg_stat_statements "
            "WHERE query NOT LIKE '%pg_stat_statements%' GROUP BY query"
        )
        return {" ".join(r["query"].split()): r["calls"] for r in rows}
