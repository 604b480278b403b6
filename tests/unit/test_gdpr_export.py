"""The GDPR export put together from every service's part, with the caller's
token: a service that does not know the person adds nothing, a failing one
fails the export (never a partial document passed off as whole)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from libs.api.app import create_service_app
from libs.api.problems import Problem
from libs.auth.devkeys import mint
from libs.auth.tokens import TokenVerifier
from libs.gdpr.export import ExportPart, assemble, export_router, gdpr_router
from libs.settings import Settings

KNOWN = uuid.uuid4()


class Part(ExportPart):
    """Any of the parts below (each field absent unless given)."""

    participant: dict[str, str] | None = None
    sessions: list[int] | None = None


def service_app(name: str, data: dict[str, Any] | None, verifier: TokenVerifier, fail: bool = False) -> FastAPI:
    app = create_service_app(name, title=name, version="1", verifier=verifier)

    async def collect(request, who, participant_id):
        if fail:
            raise RuntimeError("disk on fire")
        return data if participant_id == KNOWN else None

    app.include_router(export_router(name, collect, Part))
    return app


def client(app: FastAPI, name: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url=f"http://{name}")


@pytest.fixture
def verifier(tmp_path) -> TokenVerifier:
    return TokenVerifier.from_settings(Settings(data_dir=tmp_path))


def bearer(tmp_path, *roles: str) -> str:
    return f"Bearer {mint('hr-1', 'org-a', roles or ('hr_admin',), data_dir=tmp_path)}"


async def test_parts_are_put_together(verifier: TokenVerifier, tmp_path) -> None:
    services = {
        "enrollment": client(service_app("enrollment", {"participant": {"name": "x"}}, verifier), "enrollment"),
        "sessions": client(service_app("sessions", {"sessions": [1, 2]}, verifier), "sessions"),
        "matching": client(service_app("matching", None, verifier), "matching"),
    }
    document = await assemble(KNOWN, bearer(tmp_path), services)
    assert document["participant_id"] == str(KNOWN)
    assert document["services"] == {"enrollment": {"participant": {"name": "x"}}, "sessions": {"sessions": [1, 2]}}
    with pytest.raises(Problem) as unknown:
        await assemble(uuid.uuid4(), bearer(tmp_path), services)
    assert unknown.value.status == 404


async def test_a_failing_service_fails_the_export_and_roles_apply(verifier: TokenVerifier, tmp_path) -> None:
    services = {
        "enrollment": client(service_app("enrollment", {"participant": {}}, verifier), "enrollment"),
        "evaluation": client(service_app("evaluation", {}, verifier, fail=True), "evaluation"),
    }
    with pytest.raises(Problem) as failed:
        await assemble(KNOWN, bearer(tmp_path), services)
    assert failed.value.status == 502 and "evaluation" in failed.value.detail

    root = create_service_app("platform", title="p", version="1", verifier=verifier)
    root.include_router(gdpr_router(lambda: {"enrollment": services["enrollment"]}))
    async with client(root, "root") as c:
        ok = await c.get(f"/v1/gdpr/participants/{KNOWN}/export", headers={"Authorization": bearer(tmp_path)})
        denied = await c.get(
            f"/v1/gdpr/participants/{KNOWN}/export", headers={"Authorization": bearer(tmp_path, "regional_committee")}
        )
    assert ok.status_code == 200 and ok.json()["services"] == {"enrollment": {"participant": {}}}
    assert denied.status_code == 403
