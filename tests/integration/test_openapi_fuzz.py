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
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.openapi_matrix import Operation, documents, operations
from tests.support.world import World, platform_world

pytestmark = [
    pytest.mark.integration,
    # Raised from inside schemathesis' own strategies, not from this module.
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

T = TypeVar("T")
EXAMPLES = 6  # per operation and mode


def documented_status(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    """``status_code_conformance``, except for 400: a body that is not even
    UTF-8 JSON is refused by the framework before any operation (problem+json,
    the same for every operation, so not repeated in each one's document)."""
    if response.status_code == 400:
        assert response.headers.get("content-type", [""])[0].startswith("application/problem+json")
        return None
    return status_code_conformance(ctx, response, case)


CHECKS = [not_a_server_error, documented_status, content_type_conformance, response_schema_conformance,
          negative_data_rejection]


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

    def send(self, service: str, case: schemathesis.Case) -> httpx.Response:
        kwargs: dict[str, Any] = {"params": case.query or None}
        headers = {**self.headers, **(case.headers or {})}
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
    strategy = operation.as_strategy(generation_mode=mode, headers=fuzzed.headers)
    known = fuzzed.real_ids()
    if mode is GenerationMode.POSITIVE and op.path_params and all(p in known for p in op.path_params):
        # Half the valid requests name real objects, so they reach past the 404.
        real = {p: known[p] for p in op.path_params}
        seeded = operation.as_strategy(generation_mode=mode, headers=fuzzed.headers, path_parameters=real)
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
        case.validate_response(response, checks=CHECKS)

    check()
