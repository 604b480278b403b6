"""Reading a refused request's problem+json (RFC 9457) in API tests."""

from __future__ import annotations

from typing import Any

import httpx


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem+json body of a refused request with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


def fields(body: dict[str, Any]) -> list[str]:
    """The fields a 422 problem names, sorted."""
    return sorted(e["field"] for e in body["errors"])
