"""``binome replay insights`` rebuilds every read model from the event stores,
and the rebuilt model equals the live one, table by table, although the
streams reach the projection in another order (the live consumer's is
shuffled; the replay's follows the stores)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from libs.runtime.replay import replay
from libs.runtime.service import ServiceDefinition
from libs.settings import Settings
from services.insights import SERVICE
from services.insights.consumers.insights import READ_MODEL_TABLES
from tests.support.insights import SOURCES, T0, health_scenario, pipeline, table_rows

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
