"""Every error is RFC 9457 application/problem+json."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from libs.api.problems import (
    PROBLEM_JSON,
    VALIDATION_ERROR,
    Problem,
    install_problem_handlers,
    map_exception,
)
from libs.auth.principal import Forbidden


class ConcurrencyError(Exception):
    """Stands in for the event store's optimistic-concurrency error."""


class StaleProgramme(ConcurrencyError):
    pass


class Profile(BaseModel):
    country: str
    tenure_years: int


class Enrolment(BaseModel):
    motivation: str
    profile: Profile
    themes: list[str]


def build_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    map_exception(app, ConcurrencyError, 409, type="urn:binome:problem:conflict")

    @app.post("/v1/participants")
    async def enrol(body: Enrolment, wave: int) -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/v1/conflict")
    async def conflict() -> None:
        raise StaleProgramme("programme p1 is at version 4, expected 3")

    @app.get("/v1/problem")
    async def problem() -> None:
        raise Problem(402, detail="Budget exhausted", type="urn:binome:problem:budget", budget=0)

    @app.get("/v1/http")
    async def http_error() -> None:
        raise HTTPException(418, detail="short and stout", headers={"X-Tea": "1"})

    @app.get("/v1/forbidden")
    async def forbidden() -> None:
        raise Forbidden("country DE is not yours")

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2 in a stack trace")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions=False: look at the 500 response like a real client.
    transport = httpx.ASGITransport(app=build_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_validation_error_names_each_field(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/participants?wave=abc",
        json={"motivation": "learn", "profile": {"tenure_years": "many"}, "themes": ["ai", 3]},
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM_JSON
    body = r.json()
    assert body["type"] == VALIDATION_ERROR
    assert body["status"] == 422 and body["title"] == "Unprocessable Content"
    assert body["instance"] == "/v1/participants"
    fields = {e["field"] for e in body["errors"]}
    assert fields == {
        "query.wave",
        "body.profile.country",
        "body.profile.tenure_years",
        "body.themes.1",
    }
    assert all(e["message"] and e["type"] for e in body["errors"])
    # The rejected input is not echoed back (it may be personal data).
    assert "many" not in r.text


async def test_malformed_json_is_a_422_problem(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/participants?wave=1", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM_JSON


async def test_domain_exception_mapping_covers_subclasses(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/conflict")
    assert r.status_code == 409
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json() == {
        "type": "urn:binome:problem:conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "programme p1 is at version 4, expected 3",
        "instance": "/v1/conflict",
    }


async def test_problem_exception_with_extensions(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/problem")
    assert r.status_code == 402
    assert r.json()["budget"] == 0 and r.json()["type"] == "urn:binome:problem:budget"


async def test_http_exception_keeps_status_and_headers(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/http")
    assert r.status_code == 418 and r.headers["x-tea"] == "1"
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["detail"] == "short and stout"


async def test_router_404_and_405_are_problems(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/nowhere")
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM_JSON
    assert r.json() == {"type": "about:blank", "title": "Not Found", "status": 404, "instance": "/v1/nowhere"}
    r = await client.delete("/v1/conflict")
    assert r.status_code == 405 and "allow" in r.headers
    assert r.headers["content-type"] == PROBLEM_JSON


async def test_forbidden_from_domain_code_is_403(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/forbidden")
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["detail"] == "country DE is not yours"


async def test_unexpected_error_is_a_500_problem_without_internals(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/boom")
    assert r.status_code == 500
    assert r.headers["content-type"] == PROBLEM_JSON
    assert "hunter2" not in r.text
    assert r.json()["title"] == "Internal Server Error"


async def test_an_erased_persons_shredded_key_is_a_409_in_every_service_app() -> None:
    from libs.api.app import create_service_app
    from libs.auth.tokens import TokenVerifier
    from libs.gdpr.vault import KeyShredded

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    app = create_service_app("any", title="t", version="1", verifier=TokenVerifier(issuer="i", audience="a", public_key=public))

    @app.post("/v1/notes")
    async def add_note() -> None:
        raise KeyShredded("8d3c")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.post("/v1/notes")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "erased" in response.json()["detail"]
