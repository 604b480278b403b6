"""Apply a batch of events with a few pipelined statements instead of one
round trip per statement, the handlers unchanged.

Every fact row of insights is keyed by the aggregate whose stream writes it
(a pair's row by the pair's stream, a session's by the session's, a
mentor's month by that month's budget stream), so events of different
streams touch different rows and commute; only the order within a stream
matters. The batch is therefore cut into *layers*: layer k holds the k-th
event of each stream in the batch. A layer's handlers run against
``Deferred``, which records their ``execute`` calls instead of running
them; then the recorded statements run *round* by round (each event's first
statement, then each event's second...), one ``executemany`` per distinct
statement of a round: asyncpg sends its rows in one pipelined round trip
(or one statement over arrays of them, ``unnest.py``).
Each event's statements thus run in their order, after every statement of
the earlier events of its stream.

Reads (``fetch``) go straight to the connection: only the mentor's pairs are
read, to know which pairs' activity to recompute, and those are recomputed
once for the whole batch anyway (``activity.refresh`` after all layers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from libs.events.envelope import Envelope
from services.insights.facts.unnest import execute_rows


class Deferred:
    """A connection stand-in that records ``execute`` and passes reads through."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    async def execute(self, sql: str, *args: Any) -> None:
        self.statements.append((sql, args))

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self._conn.fetch(sql, *args)


def layers(envelopes: Sequence[Envelope]) -> list[list[int]]:
    """Indexes of ``envelopes`` by layer: the k-th event of each stream in layer k."""
    seen: dict[str, int] = {}
    result: list[list[int]] = []
    for index, envelope in enumerate(envelopes):
        depth = seen.get(envelope.subject, 0)
        seen[envelope.subject] = depth + 1
        if depth == len(result):
            result.append([])
        result[depth].append(index)
    return result


async def run_rounds(conn: asyncpg.Connection, recorded: Sequence[Sequence[tuple[str, tuple[Any, ...]]]]) -> None:
    """Run each event's recorded statements (``recorded[i]`` for event i), round
    by round, one ``executemany`` (or array statement) per distinct statement
    of a round."""
    depth = max((len(statements) for statements in recorded), default=0)
    for round_ in range(depth):
        grouped: dict[str, list[tuple[Any, ...]]] = {}
        for statements in recorded:
            if round_ < len(statements):
                sql, args = statements[round_]
                grouped.setdefault(sql, []).append(args)
        for sql, rows in grouped.items():
            await execute_rows(conn, sql, rows)
