"""Audit records spooled to local files, shipped to PostgreSQL in batches.

Under ``binome up`` a request's audit record is not sent to the database on
its own: it is appended, as one JSON line, to a file of this process in the
platform's spool directory (a ``write`` of a few hundred bytes, no round
trip), and a shipper writes what gathered to each service's ``audit_log``
once every ``linger_s`` (200 ms), in one round trip per service. A record and its own
statement cost a read about a fifth of its Python, and most of its
PostgreSQL time (bench/README.md, "Seventh pass").

Why a file and not only memory: the file outlives the process. A record is
on disk (in the page cache) microseconds after its response is sent, as
before it was in flight to the database; a worker killed with ``kill -9``
leaves its files behind, and another process ships them: each process holds
an exclusive ``flock`` on its two files for as long as it runs, the lock
dies with the process, and every shipper takes, every ``sweep_s``, the files
no living process holds. Each record carries an id (``record_id``, unique
in ``audit_log``), so a file shipped twice (its owner died between the
commit and emptying the file) adds nothing.

A record the spool cannot take (a full disk) goes to the database directly,
as without a spool (``AuditTrail.record``). A batch the database refuses for
its data (a value PostgreSQL cannot store) is shipped record by record, and
the refused record is logged, never dropped silently; a batch that meets an
outage stays on disk and is shipped again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from tenacity import RetryCallState, RetryError

from libs.audit.trail import AuditRecord, insert_statement, row_of
from libs.retry import sleep_unless_stopped, until_stopped
from libs.settings import AUDIT_LINGER_S

log = logging.getLogger(__name__)

#: How often a shipper looks for files that no living process holds.
SWEEP_S = 2.0
#: A shipper that failed waits about this long before it tries again (doubling up to the cap).
RETRY_S, RETRY_CAP_S = 0.5, 10.0

_SUFFIX = ".jsonl"


def _encode(schema: str, record_id: str, at: datetime, record: AuditRecord) -> bytes:
    # orjson writes the dataclass itself (dataclasses.asdict was most of an append's cost).
    return orjson.dumps([schema, record_id, at, record]) + b"\n"


def _decode(line: bytes) -> tuple[str, AuditRecord]:
    schema, record_id, at, fields = orjson.loads(line)
    fields.update(roles=tuple(fields["roles"]), record_id=record_id, at=datetime.fromisoformat(at))
    return schema, AuditRecord(**fields)


def read_segment(fd: int) -> list[tuple[str, AuditRecord]]:
    """Every whole record of a spool file (a line cut short by a crash is not one)."""
    data = b""
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 20):
        data += chunk
    records = []
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            records.append(_decode(line))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.error("audit spool: an unreadable line skipped (%d bytes)", len(line))
    return records


class _Segment:
    """One spool file this process writes, locked from its creation to its deletion."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd = path, fd

    @classmethod
    def create(cls, directory: Path, number: int) -> _Segment | None:
        """A new file, locked; None if the name is taken (a dead process of
        the same pid left it) or a sweeper took the empty file before our lock."""
        path = directory / f"{os.getpid()}-{number:08d}{_SUFFIX}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        except FileExistsError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # never waits: the request path runs here
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(path, fd)

    @classmethod
    def next(cls, directory: Path, number: int) -> tuple[_Segment, int]:
        """A new file numbered after ``number``."""
        while True:
            number += 1
            if (segment := cls.create(directory, number)) is not None:
                return segment, number

    @classmethod
    def take(cls, path: Path) -> _Segment | None:
        """A file left by a process that is gone (its lock with it), or None."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None  # shipped meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None  # its writer is alive
        if os.fstat(fd).st_nlink == 0:  # shipped and deleted between our open and our lock
            os.close(fd)
            return None
        return cls(path, fd)

    def append(self, line: bytes) -> None:
        written = os.write(self.fd, line)
        if written != len(line):  # a full disk: cut the torn line off so the file stays readable
            os.ftruncate(self.fd, os.fstat(self.fd).st_size - written)
            raise OSError("audit spool: short write")

    def empty(self) -> bool:
        return os.fstat(self.fd).st_size == 0

    def clear(self) -> None:
        """Its records committed: the file is kept for the next ones (a new file per batch cost more than its batch)."""
        os.ftruncate(self.fd, 0)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self.fd)  # the lock goes with the last descriptor


class AuditSpool:
    """This process's audit spool in ``directory`` (shared by every process of
    the platform), shipping through ``pool``.

    Two files per process, used in turn: records go to one while the other's
    are shipped; a file whose records are committed is emptied, not deleted,
    until the process closes its spool. A file that could not be shipped is
    shipped again before the two swap again."""

    def __init__(
        self, directory: Path, pool: asyncpg.Pool, *, linger_s: float = AUDIT_LINGER_S, sweep_s: float = SWEEP_S
    ) -> None:
        self.directory = directory
        self.pool = pool
        self.linger_s, self.sweep_s = linger_s, sweep_s
        directory.mkdir(parents=True, exist_ok=True)
        self._writing: _Segment | None = None  # where records go
        self._shipped: _Segment | None = None  # the other one: empty, or records not yet committed
        self._appended = asyncio.Event()
        self._shipping = asyncio.Lock()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ the request side

    def append(self, schema: str, record: AuditRecord) -> None:
        """Spool ``record``, with an id of its own and this instant; raises OSError if the disk refuses it."""
        line = _encode(schema, os.urandom(16).hex(), datetime.now(UTC), record)
        if self._writing is None:
            self._writing, number = _Segment.next(self.directory, 0)
            self._shipped, _ = _Segment.next(self.directory, number)
        self._writing.append(line)
        self._appended.set()

    # ------------------------------------------------------------------ the shipper

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="audit spool")

    async def close(self) -> None:
        """Stop the shipper and ship what is left (what cannot be shipped stays on disk)."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await self.ship()
        except Exception as exc:
            log.warning("audit spool: not shipped at close (%s); the next start ships it", exc)
        for segment in (self._writing, self._shipped):
            if segment is None:
                continue
            if segment.empty():
                segment.remove()
            else:
                os.close(segment.fd)  # left for the next shipper: the lock goes, the file stays
        self._writing = self._shipped = None

    async def _run(self) -> None:
        retrying = until_stopped(self._stop, before_sleep=_note_failure, multiplier=RETRY_S, max=RETRY_CAP_S)
        next_sweep = 0.0
        while not self._stop.is_set():
            due = time.monotonic() >= next_sweep
            try:
                await retrying(self._round, sweep=due)
            except RetryError:
                return  # closing
            if due:
                next_sweep = time.monotonic() + self.sweep_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._appended.wait(), timeout=max(next_sweep - time.monotonic(), 0.001))
                await sleep_unless_stopped(self._stop, self.linger_s)  # the records of the requests that follow join in

    async def _round(self, *, sweep: bool) -> None:
        if sweep:
            await self.sweep()
        await self.ship()

    async def ship(self) -> int:
        """Commit this process's spooled records; returns how many were shipped."""
        async with self._shipping:
            self._appended.clear()
            if self._writing is None or self._shipped is None:
                return 0
            shipped = 0
            if not self._shipped.empty():  # a batch that failed before
                shipped += await self._ship(self._shipped)
                self._shipped.clear()
            if not self._writing.empty():
                self._writing, self._shipped = self._shipped, self._writing  # new records go to the empty one
                shipped += await self._ship(self._shipped)
                self._shipped.clear()
            return shipped

    async def sweep(self) -> int:
        """Ship the files that no living process holds (a killed worker's)."""
        shipped = 0
        for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
            segment = _Segment.take(path)
            if segment is None:
                continue
            try:
                shipped += await self._ship(segment)
            except BaseException:
                os.close(segment.fd)  # its lock released: the next sweep tries again
                raise
            segment.remove()
            log.info("audit spool: %s of a process that is gone shipped", path.name)
        return shipped

    async def _ship(self, segment: _Segment) -> int:
        records = read_segment(segment.fd)
        by_schema: dict[str, list[AuditRecord]] = defaultdict(list)
        for schema, record in records:
            by_schema[schema].append(record)
        for schema, batch in by_schema.items():
            await write_records(self.pool, schema, batch)
        return len(records)


async def write_records(pool: asyncpg.Pool, schema: str, records: list[AuditRecord]) -> None:
    """Insert ``records`` into ``schema``'s trail in one round trip; a record
    already there (its id) is skipped. If PostgreSQL refuses the batch for
    its data, each record goes alone and the refused ones are logged; any
    other failure (an outage) is raised, and nothing is lost."""
    statement = insert_statement(schema)
    try:
        await pool.executemany(statement, [row_of(r) for r in records])
    except asyncpg.DataError:
        for record in records:
            try:
                await pool.executemany(statement, [row_of(record)])
            except asyncpg.DataError:
                log.exception("audit record not written: %s %s", record.action, record.decision)


def _note_failure(state: RetryCallState) -> None:
    log.warning(
        "audit spool: shipping failed (%s), again in %.1f s; the records stay on disk",
        state.outcome.exception() if state.outcome else None, state.upcoming_sleep,
    )


def spool_directory(data_dir: str | os.PathLike[Any]) -> Path:
    """Where a platform's processes spool their audit records."""
    return Path(data_dir) / "audit-spool"
