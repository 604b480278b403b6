"""Webhooks to HR platforms on the real stack: events from the broker, a real
PostgreSQL, and a real HTTP receiver that verifies every signature with the
``standardwebhooks`` package (tests/support/webhooks.py)."""

from __future__ import annotations

import asyncio
import inspect
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import asyncpg
import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from libs.gdpr.vault import KeyVault
from libs.runtime.service import ServiceContext
from libs.settings import Settings
from services.notifications import SERVICE
from services.notifications.adapters.webhook_http import WebhookHttp
from services.notifications.domain.webhooks import DISABLE_AFTER
from services.notifications.service_layer.webhook_delivery import WebhookDeliverer
from services.notifications.service_layer.webhook_endpoints import Secrets
from tests.support.platform_process import eventually_equal
from tests.support.webhooks import NOTE, OTHER_ORG, Receiver, WebhooksEnv, webhooks_env

pytestmark = pytest.mark.integration

DECLINED = "binome.matching.PairDeclined.v1"


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[WebhooksEnv]:
    async for environment in webhooks_env(pool, kafka_bootstrap, tmp_path_factory.mktemp("webhooks")):
        yield environment


@pytest.fixture(autouse=True)
async def own_endpoints(env: WebhooksEnv) -> AsyncIterator[None]:
    """Each test sees only the endpoints it registers."""
    yield
    await env.pool.execute(f"DELETE FROM {env.schema}.webhook_endpoints")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


async def received(receiver: Receiver, event_id: uuid.UUID, timeout: float = 30.0) -> dict:
    """The verified delivery of ``event_id`` once it arrived."""
    async def count() -> int:
        return sum(1 for r in receiver.received if r.event["id"] == str(event_id))

    await eventually_equal(count, 1, timeout=timeout)
    return next(r for r in receiver.received if r.event["id"] == str(event_id))


async def status_of(env: WebhooksEnv, event_id: uuid.UUID) -> str | None:
    row = await env.delivery(event_id)
    return None if row is None else row["status"]


async def attempted(env: WebhooksEnv, event_id: uuid.UUID, times: int) -> asyncpg.Record:
    """The delivery once it was tried at least ``times`` times."""
    async def reached() -> bool:
        row = await env.delivery(event_id)
        return row is not None and row["attempts"] >= times

    await eventually_equal(reached, True)
    return await env.delivery(event_id)


# --------------------------------------------------------------------------- delivered, signed, sealed


async def test_an_event_is_delivered_signed_as_a_cloudevent_without_its_personal_fields(
    env: WebhooksEnv, receiver: Receiver
) -> None:
    endpoint = await env.register(receiver, description="HRIS")
    assert endpoint["secret"].startswith("whsec_")
    stored = await env.pool.fetchval(
        f"SELECT secret FROM {env.schema}.webhook_endpoints WHERE endpoint_id = $1", uuid.UUID(endpoint["endpoint_id"])
    )
    assert stored.startswith("enc:v1:") and endpoint["secret"] not in stored  # sealed at rest

    event_id = await env.declined()
    got = await received(receiver, event_id)

    event = got.event
    assert got.headers["content-type"].startswith("application/cloudevents+json")
    assert event["specversion"] == "1.0" and event["type"] == DECLINED and event["tenant"] == "org-a"
    assert event["country"] == "FR"
    assert "note" not in event["data"] and event["withheld"] == "note"  # personal: never sent
    assert NOTE.encode() not in got.body and b"enc:v1:" not in got.body
    delivery = await env.delivery(event_id)
    assert got.webhook_id == str(delivery["delivery_id"])
    await eventually_equal(lambda: status_of(env, event_id), "delivered")
    delivered = [e for e in await env.events_of("binome.notifications.WebhookDelivered.v1")
                 if e["data"]["delivered_event_id"] == str(event_id)]
    assert len(delivered) == 1 and delivered[0]["data"]["status_code"] == 204


async def test_a_tampered_body_is_refused_by_the_verifier(env: WebhooksEnv, receiver: Receiver) -> None:
    await env.register(receiver)
    got = await received(receiver, await env.declined())
    secret = receiver.secrets[0]
    Webhook(secret).verify(got.body, got.headers)  # the original verifies
    tampered = got.body.replace(b'"FR"', b'"DE"')
    assert tampered != got.body
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43).verify(got.body, got.headers)  # another secret


async def test_the_fan_out_never_opens_a_personal_value(
    env: WebhooksEnv, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It withholds every personal field from the body, so the runtime never
    asks the vault for the keys of what it reads (``opens_personal_values``):
    no look-up per batch, no plain personal value in its memory."""
    asked: list[str] = []  # by the consumer runtime (the endpoints' secrets are sealed too: opened to sign)
    keys = KeyVault.keys

    async def noting_keys(vault: KeyVault, key_ids, **options):
        callers = {frame.filename for frame in inspect.stack()}
        asked.extend(name for name in callers if name.endswith(("messaging/consumer.py", "messaging/replayer.py")))
        return await keys(vault, key_ids, **options)

    monkeypatch.setattr(KeyVault, "keys", noting_keys)
    await env.register(receiver)
    got = await received(receiver, await env.declined())
    assert "note" not in got.event["data"] and got.event["withheld"] == "note"
    assert asked == []


async def test_receiver_down_then_up_is_delivered_once(env: WebhooksEnv, receiver: Receiver) -> None:
    await env.register(receiver)
    receiver.stop()  # connection refused
    event_id = await env.declined()
    row = await attempted(env, event_id, 1)
    assert row["status"] == "pending" and "ConnectError" in row["last_error"]
    assert row["due_at"] - row["last_attempt_at"] == timedelta(seconds=5)  # the first backoff step

    receiver.start()
    env.clock.advance(timedelta(seconds=5))
    await received(receiver, event_id)
    await eventually_equal(lambda: status_of(env, event_id), "delivered")
    await asyncio.sleep(0.5)  # nothing more comes
    assert len([r for r in receiver.received if r.event["id"] == str(event_id)]) == 1
    row = await env.delivery(event_id)
    assert row["attempts"] == 2
    delivered = [e for e in await env.events_of("binome.notifications.WebhookDelivered.v1")
                 if e["data"]["delivered_event_id"] == str(event_id)]
    assert len(delivered) == 1 and delivered[0]["data"]["attempts"] == 2


async def test_two_workers_send_each_delivery_once(env: WebhooksEnv, receiver: Receiver) -> None:
    """A second instance's worker beside the running one: SKIP LOCKED gives
    each due delivery to one of them."""
    await env.register(receiver)
    second = WebhookDeliverer(env.pool, env.store, Secrets(env.ctx.vault), env.clock, dev_mode=True, poll_s=0.01)
    stop = asyncio.Event()
    running = asyncio.create_task(second.run(stop))
    try:
        event_ids = [await env.declined() for _ in range(12)]
        for event_id in event_ids:
            await received(receiver, event_id)
        for event_id in event_ids:
            await eventually_equal(lambda: status_of(env, event_id), "delivered")
    finally:
        stop.set()
        await running
    assert sorted(r.event["id"] for r in receiver.received) == sorted(str(e) for e in event_ids)  # once each
    delivered = [e["data"]["delivered_event_id"] for e in await env.events_of("binome.notifications.WebhookDelivered.v1")]
    assert all(delivered.count(str(e)) == 1 for e in event_ids)


# --------------------------------------------------------------------------- whose events


async def test_another_organisations_events_are_never_delivered(env: WebhooksEnv, receiver: Receiver) -> None:
    await env.register(receiver)
    foreign = await env.declined(org=OTHER_ORG)
    own = await env.declined()
    await received(receiver, own)  # published after the foreign one, on the same topic
    assert not [r for r in receiver.received if r.event["id"] == str(foreign)]
    assert await env.delivery(foreign) is None


async def test_a_committee_endpoint_gets_only_its_countries(env: WebhooksEnv, receiver: Receiver) -> None:
    fr = env.auth("regional_committee", countries=["FR"], sub="committee-fr")
    endpoint = await env.register(receiver, headers=fr, countries=["fr"])
    assert endpoint["countries"] == ["FR"]
    german = await env.declined(country="DE")
    french = await env.declined(country="FR")
    await received(receiver, french)
    assert not [r for r in receiver.received if r.event["id"] == str(german)]
    assert await env.delivery(german) is None


async def test_who_manages_which_endpoint(env: WebhooksEnv, receiver: Receiver) -> None:
    fr = env.auth("regional_committee", countries=["FR"], sub="committee-fr")
    de = env.auth("regional_committee", countries=["DE"], sub="committee-de")
    organisation_wide = await env.register(receiver)
    french = await env.register(receiver, headers=fr, countries=["FR"])

    # A committee names its own countries only.
    for body, field in (({}, "body.countries"), ({"countries": ["DE"]}, "body.countries.0")):
        refused = await env.client.post(
            "/v1/webhooks", json={"url": receiver.url, "event_types": ["*"], **body}, headers=fr
        )
        assert refused.status_code == 422, refused.text
        assert field in [e["field"] for e in refused.json()["errors"]]
    # It sees its own endpoints, not the organisation-wide one nor another country's.
    listed = (await env.client.get("/v1/webhooks", headers=fr)).json()["items"]
    ids = {e["endpoint_id"] for e in listed}
    assert french["endpoint_id"] in ids and organisation_wide["endpoint_id"] not in ids
    for who in (fr, de, env.auth(org=OTHER_ORG)):
        target = organisation_wide if who is fr else french
        for method, path in (("GET", ""), ("PATCH", ""), ("POST", ":rotate-secret"), ("DELETE", "")):
            kwargs = {"json": {"description": "x"}} if method == "PATCH" else {}
            response = await env.client.request(
                method, f"/v1/webhooks/{target['endpoint_id']}{path}", headers=who, **kwargs
            )
            assert response.status_code == 404, (method, path, response.text)
    # The HR admin reaches both, a page at a time; participants and ops reach none.
    first = (await env.client.get("/v1/webhooks?limit=1", headers=env.auth())).json()
    second = (await env.client.get(f"/v1/webhooks?limit=1&cursor={first['next_cursor']}", headers=env.auth())).json()
    assert {first["items"][0]["endpoint_id"], second["items"][0]["endpoint_id"]} == {
        organisation_wide["endpoint_id"], french["endpoint_id"]
    } and second["next_cursor"] is None
    assert (await env.client.get(f"/v1/webhooks/{french['endpoint_id']}", headers=env.auth())).status_code == 200
    for role in ("participant", "ops"):
        assert (await env.client.get("/v1/webhooks", headers=env.auth(role))).status_code == 403


# --------------------------------------------------------------------------- SSRF


@pytest.fixture(scope="module")
async def production(env: WebhooksEnv) -> AsyncIterator[httpx.AsyncClient]:
    """The same service outside dev mode."""
    ctx = ServiceContext(
        "notifications", env.pool, env.store, "", Settings(data_dir=env.data_dir, dev_mode=False),
        env.ctx.verifier, env.ctx.vault, clock=env.clock,
    )
    transport = httpx.ASGITransport(app=SERVICE.build_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://notifications") as client:
        yield client


@pytest.mark.parametrize(
    "url",
    [
        "http://203.0.113.10/hooks",  # not https
        "https://127.0.0.1/hooks",
        "https://localhost/hooks",  # a name that resolves to loopback
        "https://10.1.2.3/hooks",
        "https://192.168.0.7/hooks",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
        "https://[::1]/hooks",
        "https://[::ffff:127.0.0.1]/hooks",  # IPv4-mapped loopback
        "https://[fe80::1]/hooks",
        "https://0.0.0.0/hooks",
        "https://user:pw@8.8.8.8/hooks",
        "https://no-such-host.invalid/hooks",
        "ftp://8.8.8.8/hooks",
    ],
)
async def test_unsafe_urls_are_refused_outside_dev_mode(
    env: WebhooksEnv, production: httpx.AsyncClient, url: str
) -> None:
    before = await env.pool.fetchval(f"SELECT count(*) FROM {env.schema}.webhook_endpoints")
    response = await production.post("/v1/webhooks", json={"url": url, "event_types": ["*"]}, headers=env.auth())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["body.url"]
    assert await env.pool.fetchval(f"SELECT count(*) FROM {env.schema}.webhook_endpoints") == before


async def test_a_public_https_url_is_accepted_outside_dev_mode(env: WebhooksEnv, production: httpx.AsyncClient) -> None:
    response = await production.post(
        "/v1/webhooks", json={"url": "https://8.8.8.8/hooks", "event_types": ["binome.sessions.*"]}, headers=env.auth()
    )
    assert response.status_code == 201, response.text
    changed = await production.patch(
        f"/v1/webhooks/{response.json()['endpoint_id']}", json={"url": "https://127.0.0.1/x"}, headers=env.auth()
    )
    assert changed.status_code == 422 and changed.json()["errors"][0]["field"] == "body.url"


async def test_delivery_checks_the_address_again(receiver: Receiver) -> None:
    """A name that now resolves inside (DNS rebinding) is refused at delivery
    time, before any connection: the receiver gets nothing."""
    http = WebhookHttp(dev_mode=False)
    try:
        answer = await http.post(f"https://localhost:{receiver.port}/hooks", b"{}", {})
    finally:
        await http.aclose()
    assert not answer.ok and answer.error.startswith("refused:") and "non-public" in answer.error
    assert receiver.received == receiver.refused == []


async def test_an_idempotency_key_registers_once(env: WebhooksEnv, receiver: Receiver) -> None:
    body = {"url": receiver.url, "event_types": ["*"]}
    headers = {**env.auth(), "Idempotency-Key": "register-1"}
    first = await env.client.post("/v1/webhooks", json=body, headers=headers)
    again = await env.client.post("/v1/webhooks", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["endpoint_id"] == first.json()["endpoint_id"]
    assert first.json()["secret"] and again.json()["secret"] is None  # shown once
    other = await env.client.post("/v1/webhooks", json={**body, "event_types": ["binome.sessions.*"]}, headers=headers)
    assert other.status_code == 422 and other.json()["title"] == "Idempotency key reused"
    assert len((await env.client.get("/v1/webhooks", headers=env.auth())).json()["items"]) == 1


async def test_unknown_event_types_are_refused(env: WebhooksEnv, receiver: Receiver) -> None:
    response = await env.client.post(
        "/v1/webhooks", json={"url": receiver.url, "event_types": ["binome.matching.NoSuchThing"]}, headers=env.auth()
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body.event_types.0"]


# --------------------------------------------------------------------------- secrets, redelivery, disabling


async def test_rotation_signs_with_both_secrets_during_the_overlap(env: WebhooksEnv, receiver: Receiver) -> None:
    endpoint = await env.register(receiver)
    old = receiver.secrets[0]
    rotated = await env.client.post(f"/v1/webhooks/{endpoint['endpoint_id']}:rotate-secret", headers=env.auth())
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old and rotated.json()["previous_secret_until"] is not None

    receiver.secrets = [new]  # a receiver that switched already
    got = await received(receiver, await env.declined())
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(got.body, got.headers)  # one that did not switch yet verifies too

    env.clock.advance(timedelta(hours=25))  # the overlap ends
    got = await received(receiver, await env.declined())
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(got.body, got.headers)


async def test_a_day_of_failures_disables_the_endpoint_then_redelivery_sends_the_failed(
    env: WebhooksEnv, receiver: Receiver
) -> None:
    endpoint = await env.register(receiver)
    url = f"/v1/webhooks/{endpoint['endpoint_id']}"
    receiver.status = 500
    event_id = await env.declined()
    started = env.clock()
    row = await attempted(env, event_id, 1)
    while row["status"] == "pending":
        if row["due_at"] > env.clock():
            env.clock.advance_to(row["due_at"])
        row = await attempted(env, event_id, row["attempts"] + 1)
    assert row["status"] == "failed" and row["last_status_code"] == 500
    assert env.clock() - started >= DISABLE_AFTER  # retried over about a day

    shown = (await env.client.get(url, headers=env.auth())).json()
    assert shown["enabled"] is False and "HTTP 500" in shown["disabled_reason"]
    failed = [e for e in await env.events_of("binome.notifications.WebhookDeliveryFailed.v1")
              if e["data"]["delivered_event_id"] == str(event_id)]
    assert len(failed) == 1 and failed[0]["data"]["endpoint_disabled"] is True
    listed = (await env.client.get(f"{url}/deliveries?status=failed", headers=env.auth())).json()["items"]
    assert [d["event_id"] for d in listed] == [str(event_id)]

    # Disabled: redelivery waits for the owner to enable it again.
    assert (await env.client.post(f"{url}/deliveries:redeliver", headers=env.auth())).status_code == 409
    receiver.status, receiver.received = 204, []  # it answered 500 to the 8 tries it verified
    enabled = await env.client.patch(url, json={"enabled": True}, headers=env.auth())
    assert enabled.json()["enabled"] is True and enabled.json()["disabled_reason"] is None
    delivery_id = listed[0]["delivery_id"]
    again = await env.client.post(f"{url}/deliveries/{delivery_id}:redeliver", headers=env.auth())
    assert again.json() == {"queued": 1}
    got = await received(receiver, event_id)
    assert got.webhook_id == delivery_id  # the same webhook-id: receivers deduplicate on it
    await eventually_equal(lambda: status_of(env, event_id), "delivered")
    # Only failed deliveries are redelivered.
    assert (await env.client.post(f"{url}/deliveries/{delivery_id}:redeliver", headers=env.auth())).status_code == 409


async def test_ping_update_and_delete(env: WebhooksEnv, receiver: Receiver) -> None:
    endpoint = await env.register(receiver)
    url = f"/v1/webhooks/{endpoint['endpoint_id']}"
    ping = await env.client.post(f"{url}:ping", headers=env.auth())
    assert ping.json() == {"ok": True, "status_code": 204, "error": None}
    assert receiver.received[-1].event["type"] == "binome.notifications.WebhookPing.v1"

    changed = await env.client.patch(url, json={"description": "Workday", "enabled": False}, headers=env.auth())
    assert changed.json()["description"] == "Workday" and changed.json()["disabled_reason"] == "disabled by hr-1"
    assert (await env.client.patch(url, json={"url": None}, headers=env.auth())).status_code == 422
    other = Receiver().start()
    try:
        await env.register(other)
        event_id = await env.declined()
        await received(other, event_id)  # the event flowed to the enabled endpoint...
    finally:
        other.stop()
    queued = await env.pool.fetchval(
        f"SELECT count(*) FROM {env.schema}.webhook_deliveries WHERE event_id = $1", event_id
    )
    assert queued == 1  # ...and the disabled one queued nothing

    assert (await env.client.delete(url, headers=env.auth())).status_code == 204
    assert (await env.client.get(url, headers=env.auth())).status_code == 404
    assert await env.ctx.vault.is_shredded(uuid.UUID(endpoint["endpoint_id"]))  # its secrets are gone for good


async def test_the_webhook_body_is_the_stored_cloudevent(env: WebhooksEnv, receiver: Receiver) -> None:
    await env.register(receiver)
    event_id = await env.declined()
    got = await received(receiver, event_id)
    stored = await env.pool.fetchval(
        f"SELECT body::text FROM {env.schema}.webhook_deliveries WHERE event_id = $1 AND delivery_id = $2",
        event_id, uuid.UUID(got.webhook_id),
    )
    assert json.loads(stored) == got.event
