"""The directory's SCIM 2.0 provider on real PostgreSQL: filtering and
pagination over several hundred users (SQL and in-memory evaluation agree),
ETags (412), uniqueness (409), SCIM errors with their scimType (nothing
changed), leavers, the manager chain, erasure, the read table rebuilt from
the log, and every route refused to other organisations and other roles."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from scim2_models import SearchRequest

from libs.gdpr.personal import ERASED
from services.directory import SERVICE
from services.directory.scim.models import ScimUser
from services.directory.scim.routes import router
from services.directory.scim.search import search
from tests.support.directory import BINOME, ENTERPRISE, OTHER_ORG, SCIM, DirectoryEnv, directory_env, user

pytestmark = pytest.mark.integration

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
POPULATION = 320
DEPARTMENTS = ("Finance", "Sales", "Engineering", "Legal")


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}


def scim_error(response: Any, status: int, scim_type: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == SCIM
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == str(status)
    assert body.get("scimType") == scim_type, body
    return body


@pytest.fixture(scope="module")
async def env(pool: asyncpg.Pool, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DirectoryEnv]:
    async for environment in directory_env(pool, tmp_path_factory.mktemp("directory-scim")):
        yield environment


@pytest.fixture(scope="module")
async def population(env: DirectoryEnv) -> list[dict[str, Any]]:
    """Several hundred people of one organisation, in four departments, each
    reporting to the first person of their department."""
    org = "org-population"
    people: list[dict[str, Any]] = []
    heads: dict[str, str] = {}
    for i in range(POPULATION):
        department = DEPARTMENTS[i % len(DEPARTMENTS)]
        body = user(f"u{i:03d}@example.com", manager=heads.get(department), jobLevel=1 + i % 9)
        body[ENTERPRISE]["department"] = department
        if i % 10 == 0:
            del body["displayName"]
        if i % 3 == 0:
            body["title"] = "Manager"
        created = await env.create(body, org=org)
        heads.setdefault(department, created["id"])
        people.append(created)
    return people


# --------------------------------------------------------------------------- listing


async def page_through(env: DirectoryEnv, org: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    seen, start = [], 1
    while True:
        response = await env.client.get("/v2/Users", params={**params, "startIndex": start, "count": 75},
                                        headers=env.auth(org=org))
        assert response.status_code == 200, response.text
        body = response.json()
        resources = body.get("Resources", [])
        assert body["startIndex"] == start and body["itemsPerPage"] == len(resources)
        seen += resources
        start += 75
        if start > body["totalResults"]:
            return seen, body["totalResults"]


async def test_pages_cover_several_hundred_users_once_in_the_order_asked(
    env: DirectoryEnv, population: list[dict[str, Any]]
) -> None:
    seen, total = await page_through(env, "org-population", sortBy="userName", sortOrder="descending")
    assert total == POPULATION
    names = [u["userName"] for u in seen]
    assert names == sorted((p["userName"] for p in population), reverse=True)

    first = (await env.client.get("/v2/Users", headers=env.auth(org="org-population"))).json()
    assert first["totalResults"] == POPULATION and first["itemsPerPage"] == 100  # the default page
    capped = (await env.client.get("/v2/Users", params={"count": 5000}, headers=env.auth(org="org-population"))).json()
    assert capped["itemsPerPage"] == 200  # maxResults of /ServiceProviderConfig
    none = (await env.client.get("/v2/Users", params={"count": 0}, headers=env.auth(org="org-population"))).json()
    assert none["totalResults"] == POPULATION and not none.get("Resources")
    beyond = (await env.client.get("/v2/Users", params={"startIndex": 1000}, headers=env.auth(org="org-population")))
    assert beyond.json()["totalResults"] == POPULATION and beyond.json()["itemsPerPage"] == 0


FILTERS = [
    'userName eq "U007@EXAMPLE.COM"',
    'userName sw "u1"',
    'userName co "5@"',
    'userName ew "9@example.com"',
    'externalId eq "ext-U042"',
    f'{ENTERPRISE}:department eq "sales" and {BINOME}:jobLevel ge 5',
    f'{ENTERPRISE}:department eq "Legal" or userName sw "u00"',
    f'not ({ENTERPRISE}:department eq "Finance")',
    'displayName pr',
    'title pr',
    'active eq true and displayName co "U1"',
    f'{BINOME}:country eq "fr" and ({BINOME}:jobLevel lt 3 or {BINOME}:jobLevel gt 7)',
    'emails[type eq "work" and value sw "u02"]',  # a value path: evaluated by scim2-models
    'emails.value co "u31"',  # multi-valued: evaluated by scim2-models
    'name.familyName sw "u2"',
]


@pytest.mark.parametrize("scim_filter", FILTERS)
async def test_filters_answer_what_scim2_models_matches(
    env: DirectoryEnv, population: list[dict[str, Any]], scim_filter: str
) -> None:
    """Each filter, paged through the API (SQL where the columns allow it),
    finds exactly the people scim2-models' own evaluator matches."""
    seen, total = await page_through(env, "org-population", filter=scim_filter)
    request = SearchRequest[ScimUser](filter=scim_filter)
    expected = {p["id"] for p in population if request.filter.match(ScimUser.model_validate(p))}
    assert {u["id"] for u in seen} == expected and total == len(expected)
    assert expected, "a filter that matches nobody proves little"


async def test_dates_filter_on_last_modified(env: DirectoryEnv, population: list[dict[str, Any]]) -> None:
    org = "org-population"
    await asyncio.sleep(0.01)
    since = datetime.now(UTC).isoformat()
    changed = population[10:17]
    for person in changed:
        response = await env.client.patch(f"/v2/Users/{person['id']}", headers=env.auth(org=org),
                                          json=patch({"op": "replace", "path": "title", "value": "Changed"}))
        assert response.status_code == 200, response.text
    seen, _ = await page_through(env, org, filter=f'meta.lastModified gt "{since}"')
    assert {u["id"] for u in seen} == {p["id"] for p in changed}
    older, total = await page_through(env, org, filter=f'meta.lastModified lt "{since}" and meta.created lt "{since}"')
    assert total == POPULATION - len(changed) and not {u["id"] for u in older} & {p["id"] for p in changed}


async def test_sql_and_in_memory_search_agree(env: DirectoryEnv, population: list[dict[str, Any]]) -> None:
    """The same request answered by SQL and, forced, by scim2-models over every row."""
    from services.directory.scim import search as module

    request = SearchRequest[ScimUser](filter=f'{ENTERPRISE}:department eq "Engineering"', sort_by="userName",
                                      start_index=11, count=30)
    sql = await search(env.pool, env.schema, "org-population", request, "http://directory/v2/Users")
    memory = await module._search_in_memory(env.pool, env.schema, "org-population", request,
                                            "http://directory/v2/Users", 10, 30)
    assert sql[0] == memory[0] == POPULATION // 4
    assert [u.id for u in sql[1]] == [u.id for u in memory[1]]


async def test_attributes_and_excluded_attributes(env: DirectoryEnv, population: list[dict[str, Any]]) -> None:
    h, uid = env.auth(org="org-population"), population[3]["id"]
    only = (await env.client.get(f"/v2/Users/{uid}", params={"attributes": "userName,emails.value"}, headers=h)).json()
    assert set(only) == {"schemas", "id", "userName", "emails"} and only["emails"] == [{"value": "u003@example.com"}]
    without = (await env.client.get(f"/v2/Users/{uid}", params={"excludedAttributes": f"emails,{BINOME}"},
                                    headers=h)).json()
    assert "emails" not in without and BINOME not in without and without["userName"] == "u003@example.com"
    listed = (await env.client.post("/v2/Users/.search", headers=h, json={
        "schemas": [SEARCH], "filter": f'id eq "{uid}"', "attributes": ["displayName"]})).json()
    assert listed["Resources"] == [{"schemas": listed["Resources"][0]["schemas"], "id": uid,
                                    "displayName": "Person U003"}]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [
    'userName eq',
    'userName xx "a"',
    'nickName eq "x"',  # not in Binome's User schema
    'active gt true',
    'meta.lastModified gt "yesterday"',
    '(userName eq "a"',
])
async def test_a_bad_filter_is_a_400_invalid_filter(env: DirectoryEnv, bad: str) -> None:
    response = await env.client.get("/v2/Users", params={"filter": bad}, headers=env.auth())
    scim_error(response, 400, "invalidFilter")


async def test_refused_writes_answer_their_scim_type_and_change_nothing(env: DirectoryEnv) -> None:
    h = env.auth()
    boss = await env.create(user("err-boss@example.com"))
    worker = await env.create(user("err-worker@example.com", manager=boss["id"]))
    before = await env.count_events()
    url = f"/v2/Users/{worker['id']}"

    scim_error(await env.client.post("/v2/Users", json=user("ERR-BOSS@example.com"), headers=h), 409, "uniqueness")
    # An attribute outside Binome's User schema: the body does not follow the request schema.
    scim_error(await env.client.post("/v2/Users", json={**user("x@example.com"), "nickName": "X"}, headers=h),
               400, "invalidSyntax")
    scim_error(await env.client.post("/v2/Users", json={**user("y@example.com"), "userName": None}, headers=h),
               400, "invalidValue")
    scim_error(await env.client.post("/v2/Users", content=b"{not json", headers=h), 400, "invalidSyntax")
    bad_country = user("z@example.com")
    bad_country[BINOME]["country"] = "France"
    scim_error(await env.client.post("/v2/Users", json=bad_country, headers=h), 400, "invalidValue")
    scim_error(await env.client.put(url, json={**user("err-boss@example.com")}, headers=h), 409, "uniqueness")
    scim_error(await env.client.patch(url, json=patch({"op": "replace", "path": "userName",
                                                      "value": "Err-Boss@example.com"}), headers=h), 409, "uniqueness")
    scim_error(await env.client.patch(url, json=patch({"op": "replace", "path": "nickName", "value": "x"}), headers=h),
               400, "invalidPath")
    scim_error(await env.client.patch(url, json=patch({"op": "replace", "path": "id", "value": "x"}), headers=h),
               400, "mutability")
    scim_error(await env.client.patch(url, json=patch({"op": "replace", "path": 'emails[type eq "home"].value',
                                                      "value": "h@example.com"}), headers=h), 400, "noTarget")
    scim_error(await env.client.patch(url, json=patch({"op": "move", "path": "title"}), headers=h), 400,
               "invalidValue")
    # The reporting line: nobody manages themself or someone above them.
    loop = patch({"op": "replace", "path": f"{ENTERPRISE}:manager.value", "value": worker["id"]})
    scim_error(await env.client.patch(f"/v2/Users/{boss['id']}", json=loop, headers=h), 400, "invalidValue")
    own = patch({"op": "replace", "path": f"{ENTERPRISE}:manager.value", "value": worker["id"]})
    scim_error(await env.client.patch(url, json=own, headers=h), 400, "invalidValue")
    scim_error(await env.client.get("/v2/Users/not-an-id", headers=h), 404, None)
    scim_error(await env.client.get("/v2/Nothing", headers=h), 404, None)
    scim_error(await env.client.post("/v2/Schemas", headers=h), 405, None)

    assert await env.count_events() == before
    assert (await env.client.get(url, headers=h)).json() == worker


async def test_what_the_openapi_document_says_of_schemas_and_ids(env: DirectoryEnv) -> None:
    """As the directory's OpenAPI document says: a body may omit ``schemas``
    (read as the message's own schema), but one listing schemas must list
    that one; an id longer than the route takes is a 400 invalidValue
    naming it, on every route taking an id, and changes nothing."""
    h = env.auth()
    unlabelled = {k: v for k, v in user("no-schemas@example.com").items() if k != "schemas"}
    created = await env.client.post("/v2/Users", json=unlabelled, headers=h)
    assert created.status_code == 201, created.text
    assert created.json()["schemas"][0] == "urn:ietf:params:scim:schemas:core:2.0:User"
    listed = await env.client.post("/v2/Users/.search", json={"filter": 'userName eq "no-schemas@example.com"'},
                                   headers=h)
    assert [u["id"] for u in listed.json()["Resources"]] == [created.json()["id"]]

    before = await env.count_events()
    foreign = {**user("foreign-schemas@example.com"), "schemas": ["urn:example:other"]}
    scim_error(await env.client.post("/v2/Users", json=foreign, headers=h), 400, "invalidSyntax")
    scim_error(await env.client.post("/v2/.search", json={"schemas": ["urn:example:other"]}, headers=h),
               400, "invalidSyntax")
    long_id = "x" * 201
    for method, path in (("DELETE", f"/v2/Users/{long_id}"), ("GET", f"/v2/ResourceTypes/{long_id}"),
                         ("GET", f"/v2/Schemas/{long_id}")):
        body = scim_error(await env.client.request(method, path, headers=h), 400, "invalidValue")
        assert body["detail"].startswith("path."), body
    assert await env.count_events() == before


async def test_etags_refuse_stale_writes_with_412(env: DirectoryEnv) -> None:
    h = env.auth()
    created = await env.create(user("etag@example.com"))
    url, tag = f"/v2/Users/{created['id']}", created["meta"]["version"]
    assert tag == 'W/"1"'
    changed = await env.client.patch(url, json=patch({"op": "replace", "path": "title", "value": "CFO"}),
                                     headers={**h, "If-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] == changed.json()["meta"]["version"] == 'W/"2"'
    before = await env.count_events()
    for method, body in (("PATCH", patch({"op": "replace", "path": "title", "value": "CEO"})),
                         ("PUT", user("etag@example.com")), ("DELETE", None)):
        response = await env.client.request(method, url, json=body, headers={**h, "If-Match": tag})
        scim_error(response, 412, None)
    scim_error(await env.client.delete(url, headers={**h, "If-Match": '"garbage"'}), 412, None)
    assert await env.count_events() == before
    assert (await env.client.get(url, headers={**h, "If-None-Match": 'W/"2"'})).status_code == 304
    assert (await env.client.get(url, headers={**h, "If-None-Match": 'W/"1"'})).status_code == 200
    replaced = await env.client.put(url, json=user("etag@example.com"), headers={**h, "If-Match": 'W/"2"'})
    assert replaced.status_code == 200 and "title" not in replaced.json()  # PUT clears what it leaves out


async def test_concurrent_unconditional_patches_all_apply(env: DirectoryEnv) -> None:
    h = env.auth()
    created = await env.create(user("race@example.com"))
    url = f"/v2/Users/{created['id']}"
    titles = [f"T{i}" for i in range(3)]
    responses = await asyncio.gather(*(
        env.client.patch(url, json=patch({"op": "replace", "path": "title", "value": t}), headers=h) for t in titles))
    assert [r.status_code for r in responses] == [200] * 3
    assert (await env.client.get(url, headers=h)).json()["meta"]["version"] == 'W/"4"'


# --------------------------------------------------------------------------- the person's life


async def test_a_leaver_and_a_return_are_events(env: DirectoryEnv) -> None:
    h = env.auth()
    created = await env.create(user("leaver@example.com"))
    url = f"/v2/Users/{created['id']}"
    left = await env.client.patch(url, json=patch({"op": "replace", "path": "active", "value": False}), headers=h)
    assert left.json()["active"] is False
    back = await env.client.put(url, json=user("leaver@example.com"), headers=h)
    assert back.json()["active"] is True
    moved = user("leaver@example.com")
    moved[ENTERPRISE]["department"] = "Sales"
    assert (await env.client.put(url, json=moved, headers=h)).status_code == 200
    assert (await env.client.delete(url, headers=h)).status_code == 204
    scim_error(await env.client.get(url, headers=h), 404, None)
    scim_error(await env.client.delete(url, headers=h), 404, None)
    assert await env.event_types(created["id"]) == [
        "PersonProvisioned", "PersonUpdated", "PersonDeactivated", "PersonUpdated", "PersonReactivated",
        "PersonUpdated", "PersonDeactivated", "PersonDeleted",
    ]
    envelopes = await env.store.read_stream(created["id"])
    assert envelopes[5].data["changed"] == ["profile.department"]
    assert envelopes[6].data["cause"] == "deleted"
    # The userName is free again.
    assert (await env.client.post("/v2/Users", json=user("leaver@example.com"), headers=h)).status_code == 201


async def test_personal_fields_are_sealed_and_erasure_shreds_them(env: DirectoryEnv) -> None:
    created = await env.create(user("erase-me@example.com"))
    pid = created["id"]
    raw = await env.pool.fetchval(f"SELECT envelope::text FROM {env.schema}.events WHERE stream_id = $1 AND version = 1", pid)
    assert "erase-me" not in raw and "ERASE-ME" not in raw and "Acme France" in raw  # identity sealed, profile not

    assert (await env.client.post(f"/v1/people/{pid}:erase", headers=env.auth("provisioning"))).status_code == 403
    other = env.auth("hr_admin", org=OTHER_ORG)
    assert (await env.client.post(f"/v1/people/{pid}:erase", headers=other)).status_code == 404
    response = await env.client.post(f"/v1/people/{pid}:erase", headers=env.auth("hr_admin"))
    assert response.status_code == 200 and response.json() == {"person_id": pid, "erased": True}
    assert (await env.client.post(f"/v1/people/{pid}:erase", headers=env.auth("hr_admin"))).status_code == 200

    scim_error(await env.client.get(f"/v2/Users/{pid}", headers=env.auth()), 404, None)
    history = await env.store.read_stream(pid)
    assert [e.type.split(".")[2] for e in history][-3:] == ["PersonDeactivated", "PersonDeleted", "PersonErased"]
    assert history[0].data["identity"]["user_name"] == ERASED
    row = await env.pool.fetchrow(f"SELECT * FROM {env.schema}.people WHERE person_id = $1::uuid", pid)
    assert row["user_name"] is None and row["email"] is None and row["erased"]
    assert "erase-me" not in row["state"]


async def test_the_read_table_is_rebuilt_from_the_log(env: DirectoryEnv, population: list[dict[str, Any]]) -> None:
    query = f"SELECT person_id, user_name, manager_id, active, deleted, version, state FROM {env.schema}.people ORDER BY person_id"
    before = [dict(r) for r in await env.pool.fetch(query)]
    from libs.runtime.service import ServiceContext

    ctx = ServiceContext("directory", env.pool, env.store, "", None, None, env.vault)  # type: ignore[arg-type]
    applied = await SERVICE.rebuild_read_tables(ctx)  # type: ignore[misc]
    assert applied == await env.count_events()
    assert [dict(r) for r in await env.pool.fetch(query)] == before


# --------------------------------------------------------------------------- who may call


def scim_routes() -> list[tuple[str, str]]:
    return sorted((m, r.path_format) for r in router.routes if r.include_in_schema for m in r.methods)  # type: ignore[attr-defined]


async def call(env: DirectoryEnv, method: str, path: str, user_id: str, headers: dict[str, str]) -> Any:
    url = path.replace("{user_id}", user_id).replace("{resource_type_id}", "User").replace(
        "{schema_id}", "urn:ietf:params:scim:schemas:core:2.0:User")
    bodies = {"/v2/Users": user("intruder@example.com"), "/v2/Users/{user_id}": user("intruder@example.com"),
              "/v2/Users/.search": {"schemas": [SEARCH]}, "/v2/.search": {"schemas": [SEARCH]}}
    body = patch({"op": "replace", "path": "title", "value": "Intruder"}) if method == "PATCH" else bodies.get(path)
    return await env.client.request(method, url, json=body if method in ("POST", "PUT", "PATCH") else None,
                                    headers=headers)


async def test_every_route_is_the_organisations_own(env: DirectoryEnv) -> None:
    """Another organisation's provisioning client never sees nor changes a user:
    404 on each route naming one, lists without them; its own writes stay its own."""
    victim = await env.create(user("victim@example.com"))
    before = await env.count_events()
    stranger = env.auth(org=OTHER_ORG)
    routes = scim_routes()
    assert len(routes) == 13
    for method, path in routes:
        response = await call(env, method, path, victim["id"], stranger)
        if "{user_id}" in path:
            scim_error(response, 404, None)
        elif path.endswith(".search") or (method, path) == ("GET", "/v2/Users"):
            assert response.status_code == 200 and victim["id"] not in response.text, (method, path)
        elif method == "POST":
            assert response.status_code == 201 and response.json()["userName"] == "intruder@example.com"
        else:  # discovery: the service's description, the same for everyone
            assert response.status_code == 200 and "victim" not in response.text, (method, path)
    assert await env.count_events() == before + 1  # the stranger's own user, in its own organisation
    mine = (await env.client.get("/v2/Users", params={"filter": 'userName eq "intruder@example.com"'},
                                 headers=env.auth())).json()
    assert mine["totalResults"] == 0
    assert (await env.client.get(f"/v2/Users/{victim['id']}", headers=env.auth())).json() == victim


@pytest.mark.parametrize("role", ["hr_admin", "regional_committee", "ops", "participant", "service", "dev_clock"])
async def test_every_route_refuses_other_roles(env: DirectoryEnv, role: str) -> None:
    victim = await env.create(user(f"role-{role}@example.com"))
    before = await env.count_events()
    for method, path in scim_routes():
        scim_error(await call(env, method, path, victim["id"], env.auth(role)), 403, None)
    assert await env.count_events() == before


async def test_every_route_needs_a_token(env: DirectoryEnv) -> None:
    victim = await env.create(user("no-token@example.com"))
    before = await env.count_events()
    for method, path in scim_routes():
        unauthenticated = await call(env, method, path, victim["id"], {"Accept": SCIM})
        assert scim_error(unauthenticated, 401, None) and unauthenticated.headers["www-authenticate"]
    assert await env.count_events() == before


async def test_scim_requests_are_audited(env: DirectoryEnv) -> None:
    correlation = "audit-scim-1"
    headers = {**env.auth(), "Correlation-Id": correlation}
    assert (await env.client.get("/v2/Users", headers=headers)).status_code == 200
    assert (await env.client.get("/v2/Users", headers={**env.auth("ops"), "Correlation-Id": correlation})).status_code == 403

    async def rows() -> list[asyncpg.Record]:
        return await env.pool.fetch(f"SELECT action, status, organisation, client_id FROM {env.schema}.audit_log "
                                    "WHERE correlation_id = $1 ORDER BY id", correlation)

    for _ in range(100):
        if len(found := await rows()) == 2:
            break
        await asyncio.sleep(0.05)
    assert [(r["action"], r["status"], r["client_id"]) for r in found] == [
        ("GET /v2/Users", 200, "hr-connector"), ("GET /v2/Users", 403, "hr-connector")]
