"""The consumer runtime's batch path against real PostgreSQL and a real broker.

A fetched batch is applied in one transaction; a batch holding a failing
event falls back to record-by-record application, so the good events are
applied once and the bad one is dead-lettered after ``max_attempts`` handler
calls in all. The batches here are built from records directly, so each test
controls exactly what one fetch holds.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

from libs.events import DomainEvent, Envelope
from libs.events.contexts.enrollment import ParticipantEnrolled
from libs.events.contexts.platform import ProbeRecorded
from libs.events.serialization import dumps
from libs.gdpr.personal import PersonalData
from libs.messaging.consumer import ConsumerRunner
from libs.messaging.faults import is_transient
from libs.messaging.kafka import dead_letter_topic
from libs.observability.correlation import current_correlation_id
from tests.support.events import probe
from tests.support.kafka import dead_letter_producer, read_topic
from tests.support.projections import ProbeTally

pytestmark = pytest.mark.integration


@dataclass
class BatchTally(ProbeTally):
    """ProbeTally with the runtime's batch hook: one statement per batch."""

    batch_calls: list[list[int]] = field(default_factory=list)

    async def handle_batch(self, conn: asyncpg.Connection, items: Sequence[tuple[Envelope, DomainEvent]]) -> None:
        values = [event.value for _, event in items]  # type: ignore[attr-defined]
        self.batch_calls.append(values)
        if self.poison & set(values):
            raise ValueError("poison value in the batch")
        await conn.execute(
            f"""INSERT INTO {self.schema}.probe_tally (event_id, subject, sequence, value)
                SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[])
                ON CONFLICT (event_id) DO UPDATE SET times = probe_tally.times + 1""",
            [e.id for e, _ in items],
            [e.subject for e, _ in items],
            [e.sequence for e, _ in items],
            values,
        )


def records_of(envelopes: list[Envelope], *, topic: str = "t", extra: Sequence[bytes] = ()) -> list[ConsumerRecord]:
    values = [dumps(e) for e in envelopes] + list(extra)
    return [ConsumerRecord(topic, 0, i, 0, 0, b"k", v, None, 0, 0, []) for i, v in enumerate(values)]


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def runner_for(pool: asyncpg.Pool, projection: ProbeTally, bootstrap: str, prefix: str) -> ConsumerRunner:
    """A runner (never started: the tests hand it batches) over a freshly created read model."""
    await projection.create(pool)
    return ConsumerRunner(
        pool, projection.schema, projection, bootstrap, topic_prefix=prefix, max_attempts=3, retry_backoff_s=0.01
    )


async def apply_as_one_fetch(
    pool: asyncpg.Pool, projection: ProbeTally, records: list[ConsumerRecord], bootstrap: str, prefix: str, producer
):
    """Hand ``records`` to a fresh runner as one fetched batch; return its outcome."""
    runner = await runner_for(pool, projection, bootstrap, prefix)
    return await until_applied(runner, producer, records)


async def until_applied(runner: ConsumerRunner, producer, records: list[ConsumerRecord], tries: int = 5):
    """What the running consumer does: a batch failing transiently is rolled
    back and fetched again, whole, until it applies."""
    for _ in range(tries - 1):
        try:
            return await runner._apply_batch(producer, records)
        except Exception as exc:
            if not is_transient(exc):
                raise
    return await runner._apply_batch(producer, records)


@pytest.fixture
async def producer(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[AIOKafkaProducer]:
    async with dead_letter_producer(kafka_bootstrap, topic_prefix) as producer:
        yield producer


def on_streams(n: int) -> list[Envelope]:
    """``n`` events, each on its own stream, with values 0..n-1."""
    return [probe(f"s{i}", i) for i in range(n)]


async def applied_once(pool: asyncpg.Pool, tally: ProbeTally) -> list[int]:
    """The values in the read model, after checking each was applied exactly once."""
    rows = await tally.rows(pool)
    assert {r["times"] for r in rows} <= {1}
    return sorted(r["value"] for r in rows)


async def outcomes(pool: asyncpg.Pool, schema: str, consumer: str) -> dict[uuid.UUID, str]:
    rows = await pool.fetch(f"SELECT event_id, outcome FROM {schema}.applied_events WHERE consumer = $1", consumer)
    return {r["event_id"]: r["outcome"] for r in rows}


async def test_a_batch_with_a_poison_event_applies_the_others_once_and_dead_letters_it(
    pool, schema, kafka_bootstrap, topic_prefix, producer
) -> None:
    tally = ProbeTally(schema, name=unique("tally"), poison={5}, fail_first={3})
    envelopes = [probe("one-stream", i) for i in range(10)]
    # One fetch: ten events, a duplicate of event 2 (the relay's at-least-once), and garbage.
    records = records_of([*envelopes, envelopes[2]], extra=[b"not an envelope"])

    outcome = await apply_as_one_fetch(pool, tally, records, kafka_bootstrap, topic_prefix, producer)

    assert (outcome.applied, outcome.skipped, outcome.dead) == (9, 1, 2)
    assert await applied_once(pool, tally) == [0, 1, 2, 3, 4, 6, 7, 8, 9]  # the failed batches left nothing
    # Handler calls: 3 failed transiently, so the whole batch came again: 3
    # then applied, 5 failed (call 1 of 3), and the record-by-record pass
    # applied 3 once more (its third call, each earlier one rolled back) and
    # tried 5 twice more before parking it.
    assert tally.attempts[3] == 3 and tally.attempts[5] == 3
    recorded = await outcomes(pool, schema, tally.name)
    assert recorded[envelopes[5].id] == "dead_lettered"
    assert {recorded[e.id] for i, e in enumerate(envelopes) if i != 5} == {"applied"}

    dead = await read_topic(kafka_bootstrap, dead_letter_topic(topic_prefix), until=2)
    attempts = sorted(dict(r.headers)["attempts"] for r in dead)
    assert attempts == [b"0", b"3"]  # garbage is never retried; the poison event was tried 3 times


async def test_a_poison_event_failing_every_batch_attempt_counts_each_one(
    pool, schema, kafka_bootstrap, topic_prefix, producer
) -> None:
    """The poison event first fails in the batch: that call counts as attempt 1 of 3."""
    tally = ProbeTally(schema, name=unique("tally"), poison={0})
    envelopes = on_streams(3)

    outcome = await apply_as_one_fetch(pool, tally, records_of(envelopes), kafka_bootstrap, topic_prefix, producer)

    assert (outcome.applied, outcome.dead) == (2, 1)
    assert tally.attempts == {0: 3, 1: 1, 2: 1}  # 1 and 2 never ran in the failed batch: 0 raised first
    assert len(await read_topic(kafka_bootstrap, dead_letter_topic(topic_prefix), until=1)) == 1


async def test_the_batch_hook_writes_a_batch_at_once_and_never_sees_duplicates(
    pool, schema, kafka_bootstrap, topic_prefix, producer
) -> None:
    tally = BatchTally(schema, name=unique("tally"))
    envelopes = on_streams(8)
    runner = await runner_for(pool, tally, kafka_bootstrap, topic_prefix)

    first = await runner._apply_batch(producer, records_of(envelopes[:5]))
    # Redelivery of 0-4 (offsets not committed), new events 5-7, and 6 twice in the batch.
    second = await runner._apply_batch(producer, records_of([*envelopes, envelopes[6]]))

    assert (first.applied, first.skipped) == (5, 0)
    assert (second.applied, second.skipped) == (3, 6)
    assert tally.batch_calls == [[0, 1, 2, 3, 4], [5, 6, 7]]
    assert tally.attempts == {}  # handle() was never needed
    assert await applied_once(pool, tally) == list(range(8))


async def test_a_failing_batch_hook_falls_back_to_handle_per_event(
    pool, schema, kafka_bootstrap, topic_prefix, producer
) -> None:
    tally = BatchTally(schema, name=unique("tally"), poison={2})
    envelopes = on_streams(4)

    outcome = await apply_as_one_fetch(pool, tally, records_of(envelopes), kafka_bootstrap, topic_prefix, producer)

    assert (outcome.applied, outcome.dead) == (3, 1)
    assert tally.batch_calls == [[0, 1, 2, 3]]  # the hook failed once, without a culprit
    assert tally.attempts == {0: 1, 1: 1, 2: 3, 3: 1}  # then handle() per event, 3 tries for the poison
    assert await applied_once(pool, tally) == [0, 1, 3]
    assert (await outcomes(pool, schema, tally.name))[envelopes[2].id] == "dead_lettered"


@dataclass
class CorrelationSpy(ProbeTally):
    """Records the correlation id current while each event is handled."""

    seen: dict[int, str | None] = field(default_factory=dict)

    async def handle(self, conn: asyncpg.Connection, envelope: Envelope, event: DomainEvent) -> None:
        self.seen[event.value] = current_correlation_id()  # type: ignore[attr-defined]
        await super().handle(conn, envelope, event)


async def test_each_event_is_handled_under_its_correlation_id(
    pool, schema, kafka_bootstrap, topic_prefix, producer
) -> None:
    spy = CorrelationSpy(schema, name=unique("spy"), fail_first={1})
    envelopes = [e.model_copy(update={"correlationid": f"req-{e.data['value']}"}) for e in on_streams(3)]

    # The batch path, then record by record (1 fails once).
    await apply_as_one_fetch(pool, spy, records_of(envelopes), kafka_bootstrap, topic_prefix, producer)

    assert spy.seen == {0: "req-0", 1: "req-1", 2: "req-2"}
    assert current_correlation_id() is None  # restored after each event


class OpeningSpy(PersonalData):
    """Records which envelopes the runner asks to open (no vault needed:
    the probes carry nothing sealed)."""

    def __init__(self) -> None:
        self.opened: list[uuid.UUID] = []

    def vault_connection(self, pool: asyncpg.Pool, conn: asyncpg.Connection | None) -> None:
        return None

    async def open(self, envelopes: Sequence[Envelope], *, conn: asyncpg.Connection | None = None) -> list[Envelope]:
        self.opened += [e.id for e in envelopes]
        return list(envelopes)


@dataclass
class ProbesOnly(BatchTally):
    """A projection that says it handles probes only (as a Consumer says it
    by its ``on_`` methods)."""

    def handles(self, model: type[DomainEvent]) -> bool:
        return model is ProbeRecorded


async def test_an_event_the_projection_does_not_handle_is_claimed_but_never_opened_loaded_nor_handed_over(
    pool, schema, kafka_bootstrap, topic_prefix, producer
) -> None:
    tally = ProbesOnly(schema, name=unique("tally"))
    probes = on_streams(2)
    # Another type, with a payload that would not even load (a full path would park it).
    other = probe("other").model_copy(update={"type": ParticipantEnrolled.event_type(), "data": {"role": "?"}})
    runner = await runner_for(pool, tally, kafka_bootstrap, topic_prefix)
    runner.personal = spy = OpeningSpy()

    outcome = await runner._apply_batch(producer, records_of([probes[0], other, probes[1]]))

    assert (outcome.applied, outcome.dead) == (3, 0)
    assert spy.opened == [probes[0].id, probes[1].id]
    assert tally.batch_calls == [[0, 1]]
    assert set(await outcomes(pool, schema, tally.name)) == {probes[0].id, other.id, probes[1].id}


async def test_a_batch_of_events_the_projection_does_not_handle_is_claimed_once(
    pool, schema, kafka_bootstrap, topic_prefix, producer
) -> None:
    tally = ProbesOnly(schema, name=unique("tally"))
    others = [
        probe(f"other-{i}").model_copy(update={"type": ParticipantEnrolled.event_type(), "data": {}}) for i in range(2)
    ]
    runner = await runner_for(pool, tally, kafka_bootstrap, topic_prefix)

    first = await runner._apply_batch(producer, records_of(others))  # the claim alone, without a transaction
    again = await runner._apply_batch(producer, records_of(others))  # redelivered

    assert (first.applied, first.skipped, first.dead) == (2, 0, 0)
    assert (again.applied, again.skipped) == (0, 2)
    assert tally.batch_calls == []
    assert set(await outcomes(pool, schema, tally.name)) == {e.id for e in others}
