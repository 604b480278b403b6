"""Bearer auth and role checks as FastAPI dependencies, through create_service_app."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI

from libs.api.app import create_service_app
from libs.api.problems import PROBLEM_JSON
from libs.api.security import current_principal, requires
from libs.auth.principal import HR_ADMIN, OPS, PARTICIPANT, REGIONAL_COMMITTEE, Principal
from libs.auth.tokens import TokenVerifier

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def token_for(*roles: str, countries: list[str] | None = None) -> str:
    now = int(time.time())
    return jwt.encode(
        {"iss": "idp", "aud": "binome", "sub": "u1", "org": "acme", "roles": list(roles),
         "countries": countries or [], "iat": now, "exp": now + 60},
        KEY,
        algorithm="RS256",
    )


def build_app() -> FastAPI:
    verifier = TokenVerifier(issuer="idp", audience="binome", public_key=PUBLIC_PEM)
    app = create_service_app("test", title="t", version="1", verifier=verifier)

    @app.get("/v1/me")
    async def me(principal: Principal = Depends(current_principal)) -> dict[str, object]:
        return {"sub": principal.subject, "roles": sorted(principal.roles)}

    @app.post("/v1/waves", dependencies=[Depends(requires(HR_ADMIN, REGIONAL_COMMITTEE))])
    async def create_wave() -> dict[str, str]:
        return {"created": "yes"}

    @app.get("/v1/admin")
    async def admin(principal: Principal = Depends(requires(HR_ADMIN))) -> str:
        return principal.subject

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def bearer(t: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dTpw"}, {"Authorization": "Bearer"}],
    ids=["no header", "basic scheme", "empty bearer"],
)
async def test_missing_token_is_401_with_challenge(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    r = await client.get("/v1/me", headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["status"] == 401


async def test_valid_token_passes(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/me", headers=bearer(token_for(OPS)))
    assert r.status_code == 200 and r.json() == {"sub": "u1", "roles": [OPS]}


@pytest.mark.parametrize("role", [PARTICIPANT, OPS])
async def test_missing_role_is_403_problem(client: httpx.AsyncClient, role: str) -> None:
    r = await client.post("/v1/waves", headers=bearer(token_for(role)))
    assert r.status_code == 403
    assert r.headers["content-type"] == PROBLEM_JSON
    assert "hr_admin" in r.json()["detail"]


@pytest.mark.parametrize("role", [HR_ADMIN, REGIONAL_COMMITTEE])
async def test_any_listed_role_is_enough(client: httpx.AsyncClient, role: str) -> None:
    r = await client.post("/v1/waves", headers=bearer(token_for(role, countries=["FR"])))
    assert r.status_code == 200


async def test_requires_returns_the_principal(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/admin", headers=bearer(token_for(HR_ADMIN)))).json() == "u1"
    assert (await client.get("/v1/admin", headers=bearer(token_for(OPS)))).status_code == 403
    # No token at all is 401 (authenticate first), not 403.
    assert (await client.get("/v1/admin")).status_code == 401


async def test_openapi_documents_the_bearer_scheme(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/metrics" not in doc["paths"]  # ops routes stay out of the API document
