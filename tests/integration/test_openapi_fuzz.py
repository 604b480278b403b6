"""schemathesis against every operation of every service's OpenAPI document.

Every service runs on the real stack (``binome up``'s Platform, seeded with a
world of two countries: tests/support/world.py); schemathesis generates
requests from each operation's schema, valid ones and schema-violating ones,
and sends them in-process over ASGI with a global HR admin's token. No
response may be a server error (5xx) or break the schema it documents (status,
content type, body), and a schema-violating request must get a 4xx.

The platform runs on an event loop of its own, in a thread: schemathesis and
Hypothesis drive synchronous tests, and every request is handed to that loop
(where the asyncpg pool lives). Examples are few and derandomized (the same
ones every run), so the whole module takes a couple of minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import positive_data_acceptance as schemathesis_positive_data_acceptance

from libs.api.problems import IMPORT_REJECTED
from services.directory.scim.openapi import RULES as SCIM_RULES
from tests.support.openapi_matrix import Operation, documents, operations
from tests.support.world import World, platform_world

pytestmark = [
    pytest.mark.integration,
    # Raised from inside schemathesis' own strategies, not from this module.
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

T = TypeVar("T")
EXAMPLES = 6  # per operation and mode

#: Checks that send requests of their own through schemathesis' transport
#: (this module hands every request to the platform's loop instead) or need
#: a stateful run. What they prove is proven here otherwise: authentication
#: (``ignored_auth``) by test_every_operation_refuses_a_request_without_a_token
#: below and the isolation matrix; object-level authorisation
#: (``object_level_authorization``) by tests/integration/test_isolation_matrix.py.
PROBING = {"ignored_auth", "object_level_authorization", "use_after_free", "ensure_resource_availability"}
#: Refusals of schema-valid requests that no JSON Schema can prevent, each
#: stated in the operation's document: a precondition that failed (412: an
#: If-Match of the documented form naming another version), a domain rule (a 422 whose every error
#: is of type ``rule``: a theme the programme does not offer, a cursor the API
#: did not issue), a file refused for its content (``import-rejected``), a SCIM
#: 400 whose ``scimType`` is one of services/directory/scim/openapi.RULES (a
#: filter outside RFC 7644's grammar, an attribute path naming no attribute of
#: the User, a PATCH path selecting nothing). Any other 4xx to a schema-valid
#: request means the document and the behaviour disagree.
def refused_by_a_stated_rule(response: Any) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    if response.status_code == 412:
        return True
    if response.status_code == 422:
        errors = body.get("errors") or []
        return body.get("type") == IMPORT_REJECTED or (bool(errors) and all(e.get("type") == "rule" for e in errors))
    return response.status_code == 400 and body.get("scimType") in SCIM_RULES


def positive_data_acceptance(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """schemathesis' own check, but for the refusals above."""
    if refused_by_a_stated_rule(response):
        return None
    return schemathesis_positive_data_acceptance(ctx, response, case)


def all_checks() -> list[Any]:
    """Every check schemathesis has (``--checks all``), less the ones above;
    ``positive_data_acceptance`` as refined above."""
    load_all_checks()
    builtin = CHECKS.get_all()
    checks = [c for c in builtin if getattr(c, "__name__", "") not in PROBING]
    assert len(checks) == len(builtin) - len(PROBING)  # every name above is a real check
    assert schemathesis_positive_data_acceptance in checks
    return [positive_data_acceptance if c is schemathesis_positive_data_acceptance else c for c in checks]


CHECKS_RUN = all_checks()


class LoopThread:
    """An event loop running in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-platform", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class Fuzzed:
    def __init__(self, runner: LoopThread, world: World) -> None:
        self.runner, self.world = runner, world
        self.headers = world.auth("hr_admin", sub="fuzzer")
        # SCIM answers only the organisation's provisioning client.
        self.provisioning = world.auth("provisioning", sub="fuzzer-provisioning")

    def headers_for(self, service: str) -> dict[str, str]:
        return self.provisioning if service == "directory" else self.headers

    def send(self, service: str, case: schemathesis.Case) -> httpx.Response:
        kwargs: dict[str, Any] = {"params": case.query or None}
        headers = {**self.headers_for(service), **(case.headers or {})}
        if not isinstance(case.body, NotSet):
            media = case.media_type or "application/json"
            headers["content-type"] = media
            if isinstance(case.body, bytes):  # a payload that is not the media type at all
                kwargs["content"] = case.body
            elif "json" in media:
                kwargs["json"] = case.body
            else:
                kwargs["content"] = case.body if isinstance(case.body, (str, bytes)) else str(case.body)
        return self.runner.run(
            self.world.client.request(case.method, f"/{service}{case.formatted_path}", headers=headers, **kwargs)
        )

    def real_ids(self) -> dict[str, str]:
        w = self.world
        return {**w.fr.ids(), "programme_id": w.programme_id, "template_id": w.template_id}


@pytest.fixture(scope="module")
def fuzzed(database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    runner = LoopThread()
    stack = contextlib.AsyncExitStack()
    data_dir = tmp_path_factory.mktemp("openapi-fuzz")

    async def start() -> World:
        pool = await stack.enter_async_context(asyncpg.create_pool(database_url, min_size=1, max_size=5))
        return await stack.enter_async_context(platform_world(pool, database_url, kafka_bootstrap, data_dir))

    try:
        yield Fuzzed(runner, runner.run(start()))
    finally:
        runner.run(stack.aclose())
        runner.close()


def cases() -> list[Any]:
    return [
        pytest.param(op, mode, id=f"{op.id}:{mode.value}")
        for op in operations()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        # An operation that takes no input has no invalid request.
        if mode is GenerationMode.POSITIVE or op.path_params or op.query_params or op.has_body
    ]


@pytest.mark.parametrize(("op", "mode"), cases())
def test_no_server_error_no_broken_schema_no_accepted_invalid_input(
    fuzzed: Fuzzed, op: Operation, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_dict(documents()[op.service])
    operation = schema[op.path][op.method]
    # The token is the test's, never mutated: a request without one is a 401, not what this tests.
    strategy = operation.as_strategy(generation_mode=mode, headers=fuzzed.headers_for(op.service))
    known = fuzzed.real_ids()
    if mode is GenerationMode.POSITIVE and op.path_params and all(p in known for p in op.path_params):
        # Half the valid requests name real objects, so they reach past the 404.
        real = {p: known[p] for p in op.path_params}
        seeded = operation.as_strategy(generation_mode=mode, headers=fuzzed.headers_for(op.service), path_parameters=real)
        strategy = st.one_of(strategy, seeded)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        response = fuzzed.send(op.service, case)
        case.validate_response(response, checks=CHECKS_RUN)

    check()


# --------------------------------------------------------------------------- the order of refusals


def bad_input(op: Operation) -> dict[str, Any]:
    """A request to ``op`` that is wrong in every way schemathesis varies
    except the token: malformed path ids, If-Match and Idempotency-Key, and
    a body that is not even UTF-8."""
    path = op.path
    for name in op.path_params:
        path = path.replace("{" + name + "}", "not-an-id")
    headers = {"If-Match": "not-an-etag", "Idempotency-Key": "k" * 1000}
    kwargs: dict[str, Any] = {"params": {p: "\u00ff" * 200 for p in op.query_params}}
    if op.has_body:
        headers["content-type"] = "application/json"
        kwargs["content"] = b"\xff\xfe{not json"
    return {"method": op.method, "url": f"/{op.service}{path}", "headers": headers, **kwargs}


@pytest.mark.parametrize("op", operations(), ids=lambda op: op.id)
def test_every_operation_refuses_a_request_without_a_token_before_its_input(fuzzed: Fuzzed, op: Operation) -> None:
    """401 first: the token is checked before If-Match, parameters or body."""
    request = bad_input(op)
    # From an address of its own: the platform answers 429 to an address
    # past 60 failed authentications a minute, and this test fails ~80.
    source = (f"198.51.100.{operations().index(op) % 250 + 1}", 40000)
    transport = httpx.ASGITransport(app=fuzzed.world.platform.asgi_app(), client=source)

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://binome") as client:
            return await client.request(**request)

    response = fuzzed.runner.run(send())
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    if op.has_body:  # with the token, the input is what is wrong: an unreadable body is the documented 422
        with_token = {**request, "headers": {**request["headers"], **fuzzed.headers_for(op.service)}}
        response = fuzzed.runner.run(fuzzed.world.client.request(**with_token))
        # SCIM's own answer to an unreadable body is 400 invalidSyntax (RFC 7644 §3.12).
        assert response.status_code == (400 if op.service == "directory" else 422), response.text


#: Every method a path could be asked with (HEAD follows GET in Starlette).
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def test_an_undocumented_method_is_405_with_the_documented_methods_in_allow(fuzzed: Fuzzed) -> None:
    """What schemathesis' ``allow_header_conformance`` checks, on every path
    and every method its document does not list. An action path
    (``/v1/waves/{wave_id}:close-enrolment``) is no instance of its object's
    path (``/v1/waves/{wave_id}``): a GET on it is a 405 naming POST, not the
    object's GET refusing ``<id>:close-enrolment`` as an id (libs/api/routes.py).
    (Starlette's own Allow names only the first route of the path.)"""
    wrong = []
    for service, doc in documents().items():
        for path, item in doc["paths"].items():
            documented = sorted(m.upper() for m in item)
            concrete = re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", path)
            for method in sorted(set(METHODS) - set(documented)):
                response = fuzzed.runner.run(
                    fuzzed.world.client.request(method, f"/{service}{concrete}", headers=fuzzed.headers_for(service))
                )
                allow = sorted(m.strip() for m in response.headers.get("allow", "").split(",") if m.strip())
                if response.status_code != 405 or allow != documented:
                    wrong.append((service, method, path, response.status_code, allow))
    assert wrong == [], "\n".join(map(str, wrong))


def test_every_action_path_is_checked() -> None:
    """The test above covers the action paths (a typo in its pattern would
    make it vacuous for them)."""
    actions = [(s, p) for s, doc in documents().items() for p in doc["paths"] if re.search(r"\}:[a-z-]+$", p)]
    assert len(actions) >= 20
