"""Structured JSON logs carrying the correlation id of the request or event
that caused them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request

from libs.api.app import create_service_app
from libs.auth.tokens import TokenVerifier
from libs.observability.correlation import RESPONSE_HEADER, correlation, correlations, current_correlation_id
from libs.observability.logging import LogFormat, configure_logging

PUBLIC_PEM = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
)


@contextmanager
def captured_logging(log_format: LogFormat) -> Iterator[io.StringIO]:
    """Binome's logging into a buffer; the previous set-up restored after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging(log_format, stream=buffer)
    try:
        yield buffer
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    with captured_logging("json") as buffer:
        yield buffer


def lines(buffer: io.StringIO) -> list[dict]:
    # Every line must be one JSON object: json.loads fails the test otherwise.
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def build_app(service: str) -> FastAPI:
    verifier = TokenVerifier(issuer="idp", audience="binome", public_key=PUBLIC_PEM)
    app = create_service_app(service, title=service, version="1", verifier=verifier)

    @app.post("/v1/pairs")
    async def create_pair() -> dict[str, str]:
        structlog.get_logger("binome.test").info("pair.created", pair_id="p-1")
        logging.getLogger("binome.test.stdlib").warning("stdlib line %s", "formatted")
        return {"correlation": current_correlation_id() or ""}

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.post("/v1/leak")
    async def leak(request: Request) -> None:
        value = (await request.json())["value"]
        try:
            int(value)  # ValueError: invalid literal for int() with base 10: '<value>'
        except ValueError as exc:
            raise ExceptionGroup("in a group", [RuntimeError(f"wrapped {value}")]) from exc

    return app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t")


async def test_log_lines_of_a_request_are_json_with_its_correlation_id(log_output: io.StringIO) -> None:
    async with client_for(build_app("log-a")) as client:
        response = await client.post("/v1/pairs", headers={"X-Request-Id": "req-42"})
        await client.get("/metrics")  # scrapes log at DEBUG: not at the default INFO
    assert response.headers[RESPONSE_HEADER] == "req-42"
    assert response.json() == {"correlation": "req-42"}
    logged = lines(log_output)
    created = next(line for line in logged if line["event"] == "pair.created")
    assert created["correlation_id"] == "req-42"
    assert created["pair_id"] == "p-1" and created["level"] == "info" and created["logger"] == "binome.test"
    assert "timestamp" in created
    stdlib = next(line for line in logged if line["logger"] == "binome.test.stdlib")
    assert stdlib["event"] == "stdlib line formatted" and stdlib["correlation_id"] == "req-42"
    access = next(line for line in logged if line["event"] == "http.request")
    assert access["correlation_id"] == "req-42"
    assert (access["service"], access["route"], access["method"], access["status"]) == ("log-a", "/v1/pairs", "POST", 200)
    assert [line["route"] for line in logged if line["event"] == "http.request"] == ["/v1/pairs"]
    # Outside the request, no id is left behind.
    assert current_correlation_id() is None


async def test_a_request_without_an_id_gets_a_new_one_echoed(log_output: io.StringIO) -> None:
    async with client_for(build_app("log-b")) as client:
        first = await client.post("/v1/pairs")
        second = await client.post("/v1/pairs", headers={"Correlation-Id": "a b\ninjected"})
    ids = [first.headers[RESPONSE_HEADER], second.headers[RESPONSE_HEADER]]
    assert len(set(ids)) == 2 and "injected" not in ids[1]  # a malformed id is replaced, never logged
    assert [r.json()["correlation"] for r in (first, second)] == ids
    created = [line["correlation_id"] for line in lines(log_output) if line["event"] == "pair.created"]
    assert created == ids
    assert "injected" not in log_output.getvalue()


async def test_an_unhandled_error_is_logged_with_the_request_id(log_output: io.StringIO) -> None:
    async with client_for(build_app("log-c")) as client:
        response = await client.get("/v1/boom", headers={"X-Correlation-Id": "err-7"})
    assert response.status_code == 500 and response.headers[RESPONSE_HEADER] == "err-7"
    error = next(line for line in lines(log_output) if line["event"] == "api.unhandled_exception")
    assert error["correlation_id"] == "err-7" and error["level"] == "error"
    assert "RuntimeError" in json.dumps(error["exception"])
    assert "locals" not in json.dumps(error["exception"])  # they may hold personal data


@pytest.mark.parametrize("log_format", ["json", "console"])
async def test_exception_logs_carry_no_request_value(log_format: LogFormat) -> None:
    secret = "ada.lovelace@example.com"
    with captured_logging(log_format) as buffer:
        async with client_for(build_app("log-leak")) as client:
            response = await client.post("/v1/leak", json={"value": secret}, headers={"X-Correlation-Id": "leak-1"})
        try:
            raise TimeoutError("database at db:5432 did not answer")
        except TimeoutError:
            logging.getLogger("binome.test").exception("infrastructure")
    assert response.status_code == 500
    text = buffer.getvalue()
    assert secret not in text and "leak-1" in text
    assert "ExceptionGroup" in text and "ValueError" in text and "leak" in text  # type and frames stay
    assert "database at db:5432 did not answer" in text  # an infrastructure message stays


async def test_mounted_apps_share_one_id_and_one_header(log_output: io.StringIO) -> None:
    root = build_app("log-root")
    root.mount("/svc", build_app("log-svc"))
    async with client_for(root) as client:
        response = await client.post("/svc/v1/pairs")
    assert len(response.headers.get_list(RESPONSE_HEADER)) == 1
    assert response.json()["correlation"] == response.headers[RESPONSE_HEADER]
    assert sum(1 for line in lines(log_output) if line["event"] == "http.request") == 1


def test_correlation_context_manager_for_events(log_output: io.StringIO) -> None:
    log = structlog.get_logger("binome.consumer")
    with correlation("evt-corr-1") as outer:
        log.info("event.applied")
        with correlation(None) as inner:  # an event with no correlation id gets a fresh one
            log.info("event.nested")
        assert current_correlation_id() == outer == "evt-corr-1"
    log.info("idle")
    by_event = {line["event"]: line for line in lines(log_output)}
    assert by_event["event.applied"]["correlation_id"] == "evt-corr-1"
    assert by_event["event.nested"]["correlation_id"] == inner != outer
    assert "correlation_id" not in by_event["idle"]


def test_console_format_is_not_json() -> None:
    with captured_logging("console") as buffer, correlation("c-1"):
        structlog.get_logger("binome.test").info("hello")
    text = buffer.getvalue()
    assert "hello" in text and "c-1" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_a_batch_runs_each_event_under_its_id_then_restores_the_one_before() -> None:
    with correlation("outer"):
        with correlations() as use:
            assert current_correlation_id() is None
            use("event-1")
            assert current_correlation_id() == "event-1"
            use("event-2")
            assert current_correlation_id() == "event-2"
        assert current_correlation_id() == "outer"
