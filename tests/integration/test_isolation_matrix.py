"""Isolation, proven for every endpoint of every service, from their OpenAPI
documents (tests/support/openapi_matrix.py says how operations are classified).

Over one world of two countries built through the real APIs and event flow
(tests/support/world.py), for every country-owned operation:
- a regional committee of FR naming a DE object (path, body or list filter)
  gets 404, never 2xx and never a 403 that depends on the object; the DE
  committee does reach the same object (the 404 is the country rule);
- a participant naming someone else's object (in its own country or not)
  gets 404 (403 where its role may not call the route at all);
- an HR admin of another organisation gets 404;
- ops gets 403 on every business route, declared ones included, and 200 on
  /metrics, /healthz and /readyz;
- nothing changes: every schema holds the same events of every type after.
A route neither in the matrix nor declared in its service's
``entrypoints/scope.py`` fails ``test_every_operation_is_in_the_matrix_or_declared``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from libs.runtime.scope import DEAD_LETTER_ROUTES
from services import SERVICES
from tests.support.openapi_matrix import (
    COUNTRY_OWNED_PATH,
    COUNTRY_OWNED_QUERY,
    ORGANISATION_PATH,
    Operation,
    Probe,
    Values,
    declared,
    documents,
    matrix,
    not_country_owned,
    operations,
    probes,
)
from tests.support.world import OTHER_ORG, World, platform_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def world(pool: asyncpg.Pool, database_url: str, kafka_bootstrap: str, tmp_path_factory) -> AsyncIterator[World]:
    async with platform_world(pool, database_url, kafka_bootstrap, tmp_path_factory.mktemp("isolation-matrix")) as w:
        yield w


def organisation(world: World) -> dict[str, str]:
    return {"programme_id": world.programme_id, "template_id": world.template_id, "user_id": str(uuid.uuid4()),
            "person_id": str(uuid.uuid4()), "resource_type_id": "User",
            "schema_id": "urn:ietf:params:scim:schemas:core:2.0:User"}


def german(world: World) -> Values:
    return Values(world.de.ids(), organisation(world))


def french_others(world: World) -> Values:
    """The FR pair's objects: other people's records in the outsider's own
    country (its own wave, which it may see, is replaced by the DE wave)."""
    owned = {**world.fr.ids(), "wave_id": world.de.wave_id, "country": "DE"}
    return Values(owned, organisation(world))


async def send(world: World, service: str, probe: Probe, headers: dict[str, str]) -> httpx.Response:
    kwargs = probe.request_kwargs()
    headers = {**headers, **kwargs.pop("headers", {})}
    return await world.call(service, probe.method, probe.url, headers, **kwargs)


def refused(response: httpx.Response, status: int, probe: Probe) -> None:
    where = f"{probe.method} {probe.url} ({probe.kind})"
    assert response.status_code == status, f"{where}: expected {status}, got {response.status_code} {response.text}"
    # The directory's SCIM routes (/v2) answer SCIM errors (RFC 7644 §3.12), the others problem+json.
    media = "application/scim+json" if probe.url.startswith("/v2/") else "application/problem+json"
    assert response.headers["content-type"] == media, where


def ids(op: Operation) -> str:
    return op.id


# --------------------------------------------------------------------------- completeness


def test_every_operation_is_in_the_matrix_or_declared() -> None:
    for service in SERVICES:
        declared_here = not_country_owned(service)
        ops = [op for op in operations() if op.service == service.name]
        assert ops, service.name
        for op in ops:
            key = (op.method, op.path)
            if op.country_owned:
                assert key not in declared_here, f"{op.id} is country-owned: it cannot be declared otherwise"
            else:
                assert declared_here.get(key, "").strip(), f"{op.id}: neither in the isolation matrix nor declared"
        stale = set(declared_here) - {(op.method, op.path) for op in ops}
        assert not stale, f"{service.name} declares routes it does not have: {sorted(stale)}"


def test_every_operation_declares_its_roles_on_the_route() -> None:
    """The roles come from the route (``requires``): the matrix knows where a 403 is the role rule."""
    for op in operations():
        assert op.roles, f"{op.id} declares no roles with libs.api.security.requires"


def test_declared_routes_name_no_country_owned_object() -> None:
    for op in declared():
        assert not set(op.path_params) & COUNTRY_OWNED_PATH, op.id
        assert set(op.path_params) <= ORGANISATION_PATH, op.id


def test_every_write_of_the_matrix_has_a_valid_body_to_probe_with() -> None:
    for op in matrix():
        if op.has_body:
            assert op.body is not None, f"{op.id}: add a body to tests/support/openapi_matrix.BODIES"


async def test_the_matrix_is_the_running_services_openapi(world: World) -> None:
    for service in SERVICES:
        assert world.app(service.name).openapi()["paths"] == documents()[service.name]["paths"], service.name


# --------------------------------------------------------------------------- the matrix


@pytest.mark.parametrize("op", matrix(), ids=ids)
async def test_committee_of_another_country_gets_404(world: World, op: Operation) -> None:
    fr, de = world.committee("FR"), world.committee("DE")
    expected = op.expected_for("regional_committee")
    before = await world.event_counts()
    for probe in probes(op, german(world)):
        refused(await send(world, op.service, probe, fr), expected, probe)
        if op.method == "GET" and expected == 404:
            # The object exists and its own committee reaches it: the 404 is the country rule.
            own = await send(world, op.service, probe, de)
            assert own.is_success, f"{probe.url} as the DE committee: {own.status_code} {own.text}"
    assert await world.event_counts() == before


@pytest.mark.parametrize("op", matrix(), ids=ids)
async def test_participant_reaches_only_its_own_records(world: World, op: Operation) -> None:
    outsider = world.participant(world.outsider_id)
    expected = op.expected_for("participant")
    before = await world.event_counts()
    # A participant's lists hold only its own records: ``?country=`` and
    # ``?wave_id=`` narrow them (an empty page); naming another person or pair is a 404.
    people = {"participant_id", "mentee_id", "mentor_id", "pair_id"}
    for values in (french_others(world), german(world)):
        for probe in probes(op, values, filters=people):
            refused(await send(world, op.service, probe, outsider), expected, probe)
    assert await world.event_counts() == before


@pytest.mark.parametrize("op", matrix(), ids=ids)
async def test_another_organisation_gets_404(world: World, op: Operation) -> None:
    other = world.auth("hr_admin", org=OTHER_ORG)
    expected = op.expected_for("hr_admin")
    before = await world.event_counts()
    # ``?country=DE`` names no object of the other organisation: its own German data, if any.
    for probe in probes(op, german(world), filters=COUNTRY_OWNED_QUERY - {"country"}):
        refused(await send(world, op.service, probe, other), expected, probe)
    assert await world.event_counts() == before


@pytest.mark.parametrize("op", [op for op in operations() if (op.method, op.path) not in DEAD_LETTER_ROUTES], ids=ids)
async def test_ops_gets_403_on_every_business_route(world: World, op: Operation) -> None:
    assert op.roles is None or "ops" not in op.roles, op.id
    before = await world.event_counts()
    for probe in probes(op, german(world)):
        refused(await send(world, op.service, probe, world.auth("ops")), 403, probe)
    assert await world.event_counts() == before


@pytest.mark.parametrize("op", [op for op in operations() if (op.method, op.path) in DEAD_LETTER_ROUTES], ids=ids)
async def test_ops_routes_refuse_every_business_role(world: World, op: Operation) -> None:
    """The dead-letter routes are the ops role's alone."""
    assert op.roles == frozenset({"ops"}), op.id
    body = {"consumer": "any", "all": True} if op.method == "POST" else None
    for role in ("hr_admin", "regional_committee", "participant", "service"):
        probe = Probe(op.method, op.path, "application/json" if body else None, body)
        refused(await send(world, op.service, probe, world.auth(role, countries=["FR"])), 403, probe)


@pytest.mark.parametrize("service", [s.name for s in SERVICES])
async def test_ops_reaches_metrics_and_health(world: World, service: str) -> None:
    ops = world.auth("ops")
    for path in ("/metrics", "/healthz", "/readyz"):
        response = await world.call(service, "GET", path, ops)
        assert response.status_code == 200, (service, path, response.text)
    assert "binome_http_requests_total" in (await world.call(service, "GET", "/metrics", ops)).text


# --------------------------------------------------------------------------- input models


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def open_objects(doc: dict[str, Any], schema: dict[str, Any], where: str, seen: set[str]) -> list[str]:
    """Where an object of ``schema`` would take a field it does not declare.
    A model (an object with ``properties``) must say ``additionalProperties:
    false``; a map (question id -> answer, language -> text) must constrain
    its keys; both are checked down to their leaves."""
    ref = schema.get("$ref")
    if ref is not None:
        if ref in seen:
            return []
        seen = seen | {ref}
    schema = _resolve(doc, schema)
    found = []
    if schema.get("type") == "object" or "properties" in schema:
        extra = schema.get("additionalProperties", True)
        if "properties" in schema:  # a model: only its declared fields
            if extra is not False:
                found.append(where)
        elif "propertyNames" not in schema and "patternProperties" not in schema:
            found.append(f"{where} (a map whose keys are not constrained)")
        for name, sub in schema.get("properties", {}).items():
            found += open_objects(doc, sub, f"{where}.{name}", seen)
        for sub in [*schema.get("patternProperties", {}).values(), *([extra] if isinstance(extra, dict) else [])]:
            found += open_objects(doc, sub, f"{where}.<key>", seen)  # a map's values are checked in turn
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(schema.get(key, [])):
            found += open_objects(doc, sub, f"{where}", seen)
    if "items" in schema and isinstance(schema["items"], dict):
        found += open_objects(doc, schema["items"], f"{where}[]", seen)
    return found


def request_bodies() -> list[tuple[str, str, str, str, dict[str, Any]]]:
    result = []
    for service, doc in documents().items():
        for path, item in doc["paths"].items():
            for method, spec in item.items():
                for media, content in spec.get("requestBody", {}).get("content", {}).items():
                    if "json" in media:
                        result.append((service, method.upper(), path, media, content["schema"]))
    return result


@pytest.mark.parametrize("case", request_bodies(), ids=lambda c: f"{c[0]}:{c[1]} {c[2]} {c[3]}")
def test_request_bodies_forbid_unknown_fields(case) -> None:
    service, _method, _path, _media, schema = case
    doc = documents()[service]
    assert open_objects(doc, schema, "body", set()) == []


#: Fields that would move an object to another country, region, organisation
#: or owner. No input model declares them (except a wave's own country and
#: region, given once when it is opened).
OWNERSHIP_FIELDS = ("country", "region", "organisation", "tenant", "owner", "participant_id", "wave_id", "programme_id")


def injections() -> list[tuple[Operation, str]]:
    result = []
    for op in operations():
        body = op.body
        if body is None or body[0] != "application/json":
            continue
        doc = documents()[op.service]
        spec = doc["paths"][op.path][op.method.lower()]["requestBody"]["content"]["application/json"]["schema"]
        schema = _resolve(doc, spec)
        declared_fields = set(schema.get("properties", {})) if "properties" in schema else set()
        items = _resolve(doc, schema["items"]) if schema.get("type") == "array" else None
        if items is not None:
            declared_fields = set(items.get("properties", {}))
        result += [(op, name) for name in OWNERSHIP_FIELDS if name not in declared_fields]
    return result


def inject(body: Any, name: str, value: Any) -> Any:
    if isinstance(body, list):
        return [{**body[0], name: value}, *body[1:]]
    return {**body, name: value}


@pytest.mark.parametrize("case", injections(), ids=lambda c: f"{c[0].id}+{c[1]}")
async def test_ownership_fields_are_refused_and_change_nothing(world: World, case: tuple[Operation, str]) -> None:
    """A global HR admin, on its own FR objects, with an otherwise valid body
    plus a field naming another country, organisation or owner: 422 naming
    that field, and nothing stored."""
    op, name = case
    value = {"country": "DE", "region": "Asia", "participant_id": world.de.mentee_id, "wave_id": world.de.wave_id,
             "programme_id": world.programme_id}.get(name, OTHER_ORG)
    probe = probes(op, Values(world.fr.ids(), organisation(world)))[0]
    probe = Probe(probe.method, probe.url, probe.content_type, inject(probe.body, name, value))
    # A caller the route lets in: HR, or the FR mentee on a participant's own route.
    caller = world.auth() if op.roles is None or "hr_admin" in op.roles else world.participant(world.fr.mentee_id)
    before = await world.event_counts()
    response = await send(world, op.service, probe, caller)
    refused(response, 422, probe)
    fields = [e.get("field", "") for e in response.json().get("errors", [])]
    assert any(f in (name, f"body.{name}") or f.endswith(f".{name}") for f in fields), fields
    assert await world.event_counts() == before


#: Fields an input model declares but that never change after creation.
IMMUTABLE = [
    ("/v1/participants/{participant_id}", "country", "DE"),
    ("/v1/participants/{participant_id}", "role", "mentor"),
    ("/v1/participants/{participant_id}", "employee_ref", "ISO-OTHER"),
]


@pytest.mark.parametrize("case", IMMUTABLE, ids=lambda c: f"PATCH {c[0]}+{c[1]}")
async def test_a_participants_country_role_and_reference_never_change(world: World, case) -> None:
    path, name, value = case
    url = path.format(participant_id=world.fr.mentee_id)
    before_doc = (await world.call("enrollment", "GET", url, world.auth())).json()
    before = await world.event_counts()
    response = await world.call("enrollment", "PATCH", url, world.auth(), json={name: value})
    refused(response, 422, Probe("PATCH", url))
    assert await world.event_counts() == before
    assert (await world.call("enrollment", "GET", url, world.auth())).json() == before_doc
