"""``If-Match`` on command endpoints, and the titles every 422 shares."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends, FastAPI

from libs.api.commands import if_match_version
from libs.api.problems import PROBLEM_JSON, VALIDATION_ERROR, Problem, install_problem_handlers, invalid
from libs.api.security import current_principal
from libs.auth.principal import Principal


@pytest.fixture
async def client():
    app = FastAPI()
    install_problem_handlers(app)
    # The caller is authenticated before If-Match is read; here, always someone.
    app.dependency_overrides[current_principal] = lambda: Principal("someone", "org-1")

    @app.post("/v1/things/{thing_id}:rename")
    async def rename(thing_id: str, version: int | None = Depends(if_match_version)) -> dict:
        return {"expected_version": version}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as c:
        yield c


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("*", None), (" * ", None), ('"3"', 3), ('W/"3"', 3), ("3", 3), ('"12"', 12)],
)
async def test_if_match_names_the_expected_version(client: httpx.AsyncClient, header, expected) -> None:
    headers = {} if header is None else {"If-Match": header}
    response = await client.post("/v1/things/a:rename", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"expected_version": expected}


@pytest.mark.parametrize("header", ['"abc"', '"-1"', '"3", "4"', '""'])
async def test_an_etag_this_api_never_gave_is_a_422_naming_the_header(client: httpx.AsyncClient, header) -> None:
    response = await client.post("/v1/things/a:rename", headers={"If-Match": header})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == VALIDATION_ERROR and body["title"] == "Unprocessable Content"
    assert [e["field"] for e in body["errors"]] == ["header.If-Match"]


def test_every_422_has_the_rfc_9110_title() -> None:
    assert Problem(422).title == "Unprocessable Content"
    assert invalid([{"field": "body.x", "message": "no"}]).to_dict()["title"] == "Unprocessable Content"
    assert Problem(422, title="Import rejected").title == "Import rejected"  # an explicit title stays
    assert Problem(409).title == "Conflict"
