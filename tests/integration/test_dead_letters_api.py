"""``GET /v1/dead-letters`` and ``POST /v1/dead-letters:redrive`` on a service
app built the way ``binome up`` builds it (``ServiceDefinition.build_app``),
over real PostgreSQL: ops only, cursor-paginated, problem+json errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

from libs.api.app import create_service_app
from libs.auth.devkeys import mint
from libs.auth.tokens import TokenVerifier
from libs.events.serialization import dumps
from libs.eventstore.store import EventStore
from libs.messaging.consumer import ConsumerRunner
from libs.runtime.service import ServiceContext, ServiceDefinition
from libs.settings import Settings
from tests.support.events import probe
from tests.support.kafka import dead_letter_producer
from tests.support.projections import ProbeTally

pytestmark = pytest.mark.integration
ORG = "org-dl"
#: Topic prefix of the records parked here: the dead-letter topic is this module's own.
PREFIX = f"t{uuid.uuid4().hex[:10]}."


class Env:
    def __init__(self, client: httpx.AsyncClient, data_dir: Path, tally: ProbeTally, pool: asyncpg.Pool, schema: str,
                 producer: AIOKafkaProducer):
        self.client, self.data_dir, self.tally, self.pool, self.schema = client, data_dir, tally, pool, schema
        self.producer = producer

    def auth(self, *roles: str, org: str = ORG) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint('u-1', org, roles, data_dir=self.data_dir)}"}

    async def park(self, *values: int, tenant: str = ORG) -> list:
        """Events that fail for ever, parked by a real runner; returns their envelopes."""
        self.tally.poison |= set(values)
        envelopes = [probe(f"s{v}", v, tenant=tenant) for v in values]
        records = [ConsumerRecord(f"{PREFIX}binome.platform.events", 0, i, 0, 0, b"k", dumps(e), None, 0, 0, [])
                   for i, e in enumerate(envelopes)]
        runner = ConsumerRunner(self.pool, self.schema, self.tally, "", topic_prefix=PREFIX, max_attempts=1)
        await runner._apply_batch(self.producer, records)
        return envelopes


@pytest.fixture
async def env(pool: asyncpg.Pool, schema: str, tmp_path: Path, kafka_bootstrap: str) -> AsyncIterator[Env]:
    tally = ProbeTally(schema, name="probe-tally")
    await tally.create(pool)
    settings = Settings(data_dir=tmp_path)
    verifier = TokenVerifier.from_settings(settings)
    service = ServiceDefinition(
        "probe",
        lambda ctx: create_service_app("probe", title="Probe", version="1", verifier=ctx.verifier),
        projections=lambda ctx: [tally],
    )
    ctx = ServiceContext("probe", pool, EventStore(pool, schema), "", settings, verifier)
    transport = httpx.ASGITransport(app=service.build_app(ctx))
    async with (
        dead_letter_producer(kafka_bootstrap, PREFIX) as producer,
        httpx.AsyncClient(transport=transport, base_url="http://probe") as client,
    ):
        yield Env(client, tmp_path, tally, pool, schema, producer)


async def test_only_ops_reads_dead_letters(env: Env) -> None:
    await env.park(1)
    assert (await env.client.get("/v1/dead-letters")).status_code == 401
    for role in ("hr_admin", "regional_committee", "participant", "service"):
        refused = await env.client.get("/v1/dead-letters", headers=env.auth(role))
        assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    redrive = await env.client.post(
        "/v1/dead-letters:redrive", json={"consumer": "probe-tally", "all": True}, headers=env.auth("hr_admin")
    )
    assert redrive.status_code == 403
    assert len(await env.pool.fetch(f"SELECT * FROM {env.schema}.dead_letters")) == 1  # nothing redriven

    listed = await env.client.get("/v1/dead-letters", headers=env.auth("ops"))
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert item["consumer"] == "probe-tally" and item["event_type"] == "binome.platform.ProbeRecorded.v1"
    assert item["attempts"] == 1 and "poison value 1" in item["reason"]
    assert "record_value" not in item  # the payload may hold personal data


async def test_dead_letters_are_paged_with_cursors_and_filtered(env: Env) -> None:
    parked = await env.park(*range(5))
    await env.park(9, tenant="org-other")  # another organisation's: never shown
    ops = env.auth("ops")
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "consumer": "probe-tally", **({"cursor": cursor} if cursor else {})}
        page = (await env.client.get("/v1/dead-letters", params=params, headers=ops)).json()
        assert len(page["items"]) <= 2
        seen += [item["event_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(e.id) for e in parked]
    other = await env.client.get("/v1/dead-letters", params={"consumer": "nobody"}, headers=ops)
    assert other.json() == {"items": [], "next_cursor": None}
    # A cursor issued for one filter is refused for another, naming the field.
    first = (await env.client.get("/v1/dead-letters", params={"limit": 2}, headers=ops)).json()
    wrong = await env.client.get(
        "/v1/dead-letters", params={"consumer": "probe-tally", "cursor": first["next_cursor"]}, headers=ops
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "query.cursor"


async def test_redrive_through_the_api(env: Env) -> None:
    good, bad = await env.park(1, 2)
    env.tally.poison = {2}
    ops = env.auth("ops")
    one = await env.client.post(
        "/v1/dead-letters:redrive", json={"consumer": "probe-tally", "event_id": str(good.id)}, headers=ops
    )
    assert one.status_code == 200, one.text
    assert [(r["event_id"], r["outcome"]) for r in one.json()["results"]] == [(str(good.id), "applied")]

    key = {"Idempotency-Key": str(uuid.uuid4())}
    every = await env.client.post("/v1/dead-letters:redrive", json={"consumer": "probe-tally", "all": True},
                                  headers={**ops, **key})
    [result] = every.json()["results"]
    assert result["event_id"] == str(bad.id) and result["outcome"] == "failed" and result["attempts"] == 2
    replayed = await env.client.post("/v1/dead-letters:redrive", json={"consumer": "probe-tally", "all": True},
                                     headers={**ops, **key})
    assert replayed.json() == every.json() and replayed.headers["idempotent-replayed"] == "true"
    assert env.tally.attempts[2] == 2  # the replayed call ran nothing

    listed = (await env.client.get("/v1/dead-letters", headers=ops)).json()["items"]
    assert [item["event_id"] for item in listed] == [str(bad.id)]
    assert sorted(r["value"] for r in await env.tally.rows(env.pool)) == [1]


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"consumer": "probe-tally"}, "body.event_id", 422),
        ({"consumer": "probe-tally", "all": True, "event_id": str(uuid.uuid4())}, "body.event_id", 422),
        ({"consumer": "no-such-projection", "all": True}, "body.consumer", 422),
        ({"consumer": "", "all": True}, "body.consumer", 422),
        ({"consumer": "probe-tally", "event_id": str(uuid.uuid4())}, None, 404),
    ],
)
async def test_a_bad_redrive_names_the_field_and_changes_nothing(env: Env, body: dict, field: str | None, status: int) -> None:
    await env.park(3)
    response = await env.client.post("/v1/dead-letters:redrive", json=body, headers=env.auth("ops"))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if field is not None:
        assert field in [e["field"] for e in response.json()["errors"]]
    [row] = await env.pool.fetch(f"SELECT attempts FROM {env.schema}.dead_letters")
    assert row["attempts"] == 1 and env.tally.attempts[3] == 1
