"""``libs.api.locations.url_for`` answers what Starlette's ``request.url_for``
answers, through mounts as ``binome up`` nests them, behind a proxy's
prefix, again and again (the kept template), and fails as it fails."""

from __future__ import annotations

import uuid

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient
from starlette.routing import NoMatchFound

from libs.api.locations import url_for


def outcome(call) -> str:
    """The URL, or the kind of error raised."""
    try:
        return call()
    except (NoMatchFound, AssertionError) as exc:
        return f"{type(exc).__name__}: {exc}"


def platform() -> FastAPI:
    """A root app mounting a service app whose routes come from a router, as the platform does."""
    router = APIRouter(prefix="/v1")

    @router.get("/things/{thing_id}")
    async def get_thing(thing_id: str) -> dict[str, str]:
        return {"thing_id": thing_id}

    @router.get("/things/{thing_id}/parts/{part_id}")
    async def get_part(thing_id: str, part_id: str) -> dict[str, str]:
        return {"part_id": part_id}

    @router.post("/compare")
    async def compare(request: Request, body: dict[str, str]) -> dict[str, object]:
        name, params = body.pop("name"), body
        return {"ours": outcome(lambda: url_for(request, name, **params)),
                "theirs": outcome(lambda: str(request.url_for(name, **params)))}

    service = FastAPI()
    service.include_router(router)
    root = FastAPI()
    root.mount("/things-service", service)
    return root


@pytest.mark.parametrize("root_path", ["", "/gateway"])
def test_the_same_url_as_starlettes(root_path: str) -> None:
    client = TestClient(platform(), root_path=root_path)
    thing, part = str(uuid.uuid4()), str(uuid.uuid4())
    cases = [
        {"name": "get_thing", "thing_id": thing},
        {"name": "get_thing", "thing_id": str(uuid.uuid4())},  # the kept template, another value
        {"name": "get_part", "thing_id": thing, "part_id": part},
        {"name": "get_part", "part_id": part, "thing_id": thing},  # parameters in another order
        {"name": "get_thing", "thing_id": "a/b"},  # Starlette's convertor refuses it: so do we
        {"name": "no_such_route", "thing_id": thing},
    ]
    for body in cases:
        response = client.post(f"{root_path}/things-service/v1/compare", json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["ours"] == answer["theirs"], body
    last = client.post(f"{root_path}/things-service/v1/compare", json={"name": "get_thing", "thing_id": thing}).json()
    assert last["ours"] == f"http://testserver{root_path}/things-service/v1/things/{thing}"
