"""``binome replay insights`` rebuilds every read model from the event stores,
and the rebuilt model equals the live one, table by table, although the
streams reach the projection in another order (the live consumer's is
shuffled; the replay's follows the stores), its batches are filed without
the per-batch pair activity (recomputed once at the end), and the log holds
an event of an old type version (upcast), an envelope in its old wire form
(``sequence`` for ``streamversion``) and an erased participant."""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from libs.database import create_pool
from libs.events.registry import registry
from libs.eventstore.store import EventStore
from libs.messaging.consumer import rebuild
from libs.messaging.replay_workers import run_partitioned
from libs.messaging.replayer import Replayer, Source
from libs.runtime.replay import replay
from libs.runtime.service import ServiceDefinition
from libs.settings import Settings
from services.insights import SERVICE
from services.insights.consumers.insights import READ_MODEL_TABLES, InsightsProjection
from tests.support.insights import NOW, SOURCES, T0, Scenario, health_scenario, pipeline, table_rows

pytestmark = pytest.mark.integration

# replay() finds a context's log by service name: the schemas carry the real names.
SCHEMAS = ("insights", *SOURCES)


@pytest.fixture
async def clean_schemas(pool):
    for name in SCHEMAS:
        await pool.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    yield
    for name in SCHEMAS:
        await pool.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


async def snapshot(pool) -> dict[str, list[dict]]:
    tables = {t: await table_rows(pool, "insights", t) for t in READ_MODEL_TABLES}
    tables["applied_events"] = [
        dict(r) for r in await pool.fetch(
            "SELECT consumer, event_id, outcome FROM insights.applied_events ORDER BY event_id")
    ]
    return tables


async def test_replay_rebuilds_every_table_equal_to_the_live_one(pool, kafka_bootstrap, tmp_path, clean_schemas) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    sources = [ServiceDefinition(context, create_app=lambda ctx: None) for context in SOURCES]
    settings = Settings(topic_prefix=prefix, data_dir=tmp_path)
    sc, pairs = health_scenario()
    sc.k_anonymity(3)
    sc.survey(pairs["healthy"], "digital_maturity", "pre", due=T0, scale=[2, 3], answered=T0)
    sc.dissolve(pairs["no_first"], T0 + timedelta(days=29))
    total = len(sc.events)
    async with pipeline(pool, kafka_bootstrap, insights_schema="insights", source_schemas={c: c for c in SOURCES},
                        topic_prefix=prefix) as pipe:
        await pipe.feed(sc, shuffle_seed=7)
        live = await snapshot(pool)
        assert len(live["applied_events"]) == total
        assert all(live[t] for t in READ_MODEL_TABLES), {t: len(live[t]) for t in READ_MODEL_TABLES}

        done = await replay(pool, settings, [*sources, SERVICE], "insights")
        # Read from the stores, not re-published: the outboxes stay empty.
        assert done["insights"].read == total and done["insights"].applied + done["insights"].skipped == total
        assert [await pool.fetchval(f"SELECT count(*) FROM {c}.outbox") for c in SOURCES] == [0] * len(SOURCES)
        rebuilt = await snapshot(pool)
    for table in live:
        assert rebuilt[table] == live[table], table


OLD_WAVE_OPENED = "binome.enrollment.WaveOpened.v0"


def wave_opened_v0_to_v1(data: dict) -> dict:
    """A version 0 of ``WaveOpened``: ``name`` where v1 has ``wave_name``."""
    return {**{k: v for k, v in data.items() if k != "name"}, "wave_name": data["name"]}


@pytest.fixture
def old_wave_opened():
    registry.register_upcaster(OLD_WAVE_OPENED, wave_opened_v0_to_v1)
    yield
    del registry.upcasters[OLD_WAVE_OPENED]


def mixed_log() -> tuple[Scenario, list]:
    """The health scenario with two erased participants and the first wave's
    opening stored as version 0 (both paths upcast it)."""
    sc, pairs = health_scenario()
    erased = sc.enrol("FR", "mentee")
    sc.erase(erased)
    sc.erase(pairs["healthy"].mentor)
    at = next(i for i, (_, e) in enumerate(sc.events) if e.type.endswith(".WaveOpened.v1"))
    stream, opened = sc.events[at]
    old_data = {**{k: v for k, v in opened.data.items() if k != "wave_name"}, "name": opened.data["wave_name"]}
    sc.events[at] = (stream, opened.model_copy(update={"type": OLD_WAVE_OPENED, "data": old_data}))
    return sc, [erased.participant_id, pairs["healthy"].mentor.participant_id]


@contextlib.asynccontextmanager
async def insights_replayer(database_url: str) -> AsyncIterator[Replayer]:
    """insights' replayer on the real schema names (built in each replay worker
    too, whose registry gets the test's upcaster as a service's import would)."""
    registry.upcasters.setdefault(OLD_WAVE_OPENED, wave_opened_v0_to_v1)
    async with await create_pool(database_url, min_size=1, max_size=3) as pool:
        sources = [Source(c, EventStore(pool, c)) for c in SOURCES]
        yield Replayer(pool, "insights", InsightsProjection("insights", clock=lambda: NOW), sources, batch_size=7)


@pytest.mark.parametrize("workers", [1, 2])
async def test_replay_equals_live_with_an_upcast_event_an_old_envelope_and_an_erased_participant(
    pool, database_url, kafka_bootstrap, tmp_path, clean_schemas, old_wave_opened, workers
) -> None:
    """With ``workers`` processes, each applying its part of the streams."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    sc, gone = mixed_log()
    total = len(sc.events)
    async with pipeline(pool, kafka_bootstrap, insights_schema="insights", source_schemas={c: c for c in SOURCES},
                        topic_prefix=prefix) as pipe:
        await pipe.feed(sc, shuffle_seed=11)
        live = await snapshot(pool)
        assert await pool.fetchval("SELECT count(*) FROM insights.waves WHERE name IS NOT NULL") == 3
        assert not await pool.fetchval("SELECT count(*) FROM insights.participants WHERE participant_id = ANY($1)", gone)
        # Every stored envelope in the old wire form (``sequence``), as events
        # written before the rename still are; the live consumer read the new one.
        await pool.execute("""UPDATE enrollment.events
                              SET envelope = (envelope - 'streamversion') || jsonb_build_object('sequence', envelope->'streamversion')""")

        async with insights_replayer(database_url) as replayer:
            await rebuild(pool, "insights", replayer.projection)
            done = await run_partitioned(replayer, functools.partial(insights_replayer, database_url), workers)
        assert (done.read, done.applied, done.parked) == (total, total, 0), done
        rebuilt = await snapshot(pool)
    assert live["pair_activity"] and live["sessions"] and live["participants"]
    for table in live:
        assert rebuilt[table] == live[table], table
