"""The AsyncAPI document (``binome schemas``: docs/events/asyncapi.json) is
valid against the official AsyncAPI 3.0.0 JSON Schema, vendored unchanged
from the AsyncAPI Initiative's ``@asyncapi/specs`` package
(tests/data/README.md), so the check needs no network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from libs.events.schemagen import write_all

SPEC = Path(__file__).resolve().parents[1] / "data" / "asyncapi-3.0.0.json"


def spec_validator() -> Draft7Validator:
    spec = orjson.loads(SPEC.read_bytes())
    # The bundle names each definition by its $id (http://asyncapi.com/definitions/3.0.0/...):
    # the registry serves every one of them from the file itself, never from the network.
    resources = [
        (d["$id"], Resource.from_contents(d, default_specification=DRAFT7))
        for d in spec["definitions"].values()
        if "$id" in d
    ]
    return Draft7Validator(spec, registry=Registry().with_resources(resources))


def errors(doc: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in spec_validator().iter_errors(doc)]


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("asyncapi")
    write_all(out)
    return orjson.loads((out / "asyncapi.json").read_bytes())


def test_the_document_is_valid_asyncapi_3(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert errors(document) == []


def test_the_published_document_is_valid_asyncapi_3() -> None:
    """The copy in docs/events (what a reader downloads) too."""
    published = Path(__file__).resolve().parents[2] / "docs" / "events" / "asyncapi.json"
    assert errors(orjson.loads(published.read_bytes())) == []


def test_the_spec_refuses_what_asyncapi_3_forbids(document: dict[str, Any]) -> None:
    """The validator is not vacuous: the document broken in ways the
    specification forbids is refused."""
    channel = next(iter(document["channels"]))
    broken = [
        {**document, "info": {"title": "no version"}},
        {**document, "channels": {channel: {**document["channels"][channel], "unknownMember": 1}}},
        {**document, "operations": {"o": {"action": "publish", "channel": {"$ref": f"#/channels/{channel}"}}}},
    ]
    for doc in broken:
        assert errors(doc), doc
