"""Checking that a service's GDPR export declares every field it exports."""

from __future__ import annotations

from typing import Any

from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel

from libs.gdpr.export import export_model


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key of a JSON value, as paths (``messages[].status``)."""
    if isinstance(value, dict):
        found = set()
        for key, inner in value.items():
            found |= {f"{prefix}.{key}"} | key_paths(inner, f"{prefix}.{key}")
        return found
    if isinstance(value, list):
        return set().union(*(key_paths(item, f"{prefix}[]") for item in value))
    return set()


def assert_export_complete(service: str, answer: dict[str, Any], unfiltered: dict[str, Any], data: type[BaseModel]) -> None:
    """``answer`` (the export's JSON) holds no key its model does not declare
    (the models forbid extra keys) and lost none of what the service
    collected (``unfiltered``: its part before the response model)."""
    export_model(service, data).model_validate(answer)
    assert key_paths(answer["data"]) == key_paths(jsonable_encoder(unfiltered))
