"""Generated contracts: one JSON Schema per event type (the whole envelope) and
the AsyncAPI document. Real envelopes must validate; broken ones must not."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from pydantic import BaseModel
from typer.testing import CliRunner

from libs.events import DomainEvent, EventRegistry, new_envelope, registry, topic_for_context
from libs.cli import schemas
from libs.events.contexts.platform import ProbeRecorded
from libs.events.schemagen import asyncapi_document, envelope_schema, message_id, write_all
from libs.events.serialization import dumps
from libs.runtime.catalog import consumers_by_service
from services import SERVICES

REPO = Path(__file__).resolve().parents[2]


def read_json(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)  # the schema itself is valid 2020-12
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def wire(envelope: Any) -> dict[str, Any]:
    """The envelope exactly as it travels: serialised, then parsed as plain JSON."""
    return orjson.loads(dumps(envelope))


def probe_on_the_wire(**envelope_args: Any) -> dict[str, Any]:
    args = {"service": "platform", "subject": "probe-1", "tenant": "acme", **envelope_args}
    return wire(new_envelope(ProbeRecorded(probe="healthz", value=2), **args))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("contracts")
    return out, write_all(out)


@pytest.fixture(scope="module")
def probe_schema() -> dict[str, Any]:
    # ProbeRecorded is not published (test-only), but its schema is made the same way.
    return envelope_schema(ProbeRecorded)


PUBLISHED = registry.published().models


# --------------------------------------------------------------------------- files


def test_every_published_event_type_has_a_schema_file(generated: tuple[Path, list[Path]]) -> None:
    out, written = generated
    assert PUBLISHED, "no event type published"
    expected = {out / "events" / f"{key}.schema.json" for key in PUBLISHED} | {out / "asyncapi.json"}
    assert set(written) == expected
    assert set((out / "events").iterdir()) == expected - {out / "asyncapi.json"}
    for key, model in PUBLISHED.items():
        schema = read_json(out / "events" / f"{key}.schema.json")
        assert schema == envelope_schema(model)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["properties"]["type"]["const"] == key
        Draft202012Validator.check_schema(schema)


def test_test_only_event_types_stay_out_of_the_contracts(generated: tuple[Path, list[Path]]) -> None:
    out, _ = generated
    assert ProbeRecorded.event_type() in registry.models  # registered: it flows like any event
    assert ProbeRecorded.event_type() not in PUBLISHED
    assert not (out / "events" / f"{ProbeRecorded.event_type()}.schema.json").exists()
    assert ProbeRecorded.event_type() not in (out / "asyncapi.json").read_text()
    assert "platform" not in read_json(out / "asyncapi.json")["channels"]


def personal_marks(schema: dict[str, Any], model: type[DomainEvent]) -> set[str]:
    """The properties marked personal in ``model``'s own schema inside ``schema``."""
    [own] = [d for d in schema["$defs"].values() if d.get("title") == model.__name__ and "properties" in d]
    return {name for name, prop in own["properties"].items() if prop.get("x-personal") is True}


def test_sealed_personal_fields_are_marked(generated: tuple[Path, list[Path]]) -> None:
    out, _ = generated
    with_personal = [m for m in PUBLISHED.values() if m.personal_fields]
    assert with_personal
    for model in PUBLISHED.values():
        schema = read_json(out / "events" / f"{model.event_type()}.schema.json")
        assert personal_marks(schema, model) == set(model.personal_fields), model.event_type()
    doc = read_json(out / "asyncapi.json")
    for model in with_personal:
        payload = resolve(doc, doc["components"]["messages"][message_id(model)]["payload"]["$ref"])
        data = resolve(doc, payload["properties"]["data"]["$ref"])
        marked = {n for n, p in data["properties"].items() if p.get("x-personal") is True}
        assert marked == set(model.personal_fields)
        assert all("sealed" in data["properties"][n]["description"] for n in marked)


def test_output_is_deterministic_and_sorted(generated: tuple[Path, list[Path]], tmp_path: Path) -> None:
    _, first = generated
    second = write_all(tmp_path)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    for path in second:
        raw = path.read_bytes()
        assert raw == orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def test_stale_schema_files_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / "events" / "binome.platform.Gone.v1.schema.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    keep = tmp_path / "events" / "README.md"
    keep.write_text("not generated")
    write_all(tmp_path)
    assert not stale.exists()
    assert keep.exists()


# --------------------------------------------------------------------------- validation


def test_real_envelopes_validate(probe_schema: dict[str, Any]) -> None:
    check = validator(probe_schema)
    check.validate(probe_on_the_wire())
    check.validate(probe_on_the_wire(country="FR", correlationid="req-1", causationid="cause-1", sequence=42))


def test_schema_requires_what_the_serializer_always_writes(probe_schema: dict[str, Any]) -> None:
    required = set(probe_schema["required"])
    assert {"id", "source", "specversion", "type"} <= required  # CloudEvents' own REQUIRED
    assert {"subject", "time", "data", "streamversion", "tenant", "datacontenttype"} <= required
    assert not {"country", "correlationid", "causationid"} & required


def mutate(body: dict[str, Any], path: tuple[str, ...], value: Any = ...) -> dict[str, Any]:
    """A copy of ``body`` with ``path`` set to ``value`` (deleted when ``...``)."""
    body = orjson.loads(orjson.dumps(body))
    target = body
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("data", "unexpected"), 1),  # unknown data field
        (("data", "probe"), 42),  # wrong type in data
        (("data", "probe"), ...),  # missing required data field
        (("data", "value"), "two"),
        (("tenant",), ...),  # missing tenant
        (("id",), ...),
        (("subject",), ...),
        (("type",), "binome.platform.OtherEvent.v1"),  # another event's type
        (("source",), "/acme/platform"),
        (("streamversion",), 0),
        (("specversion",), "0.3"),
        (("country",), 7),
        (("unknownext",), "x"),
        (("id",), "not-a-uuid"),  # format checked
    ],
)
def test_broken_envelopes_fail(probe_schema: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    with pytest.raises(ValidationError):
        validator(probe_schema).validate(mutate(probe_on_the_wire(), path, value))


# A payload with nested models and an enum: its $defs must be placed where the
# $refs point, in the standalone schema and in the AsyncAPI document.


class Theme(StrEnum):
    AI = "ai"
    DATA = "data"


class Offer(BaseModel):
    theme: Theme
    level: int


class MentorQualified(DomainEvent):
    """A mentor passed qualification."""

    participant_id: str
    offers: list[Offer]
    backup: Offer | None = None


@pytest.fixture
def nested_registry() -> EventRegistry:
    reg = EventRegistry(models={}, upcasters={})
    MentorQualified.context, MentorQualified.name, MentorQualified.version = "enrollment", "MentorQualified", 1
    reg.register(MentorQualified)
    reg.register(ProbeRecorded)
    return reg


def nested_wire() -> dict[str, Any]:
    payload = MentorQualified(participant_id="p-1", offers=[Offer(theme=Theme.AI, level=2)])
    return wire(new_envelope(payload, service="enrollment", subject="p-1", tenant="acme"))


def test_nested_models_validate_through_defs(nested_registry: EventRegistry, tmp_path: Path) -> None:
    write_all(tmp_path, nested_registry)
    schema = read_json(tmp_path / "events" / "binome.enrollment.MentorQualified.v1.schema.json")
    assert {"Offer", "Theme", "MentorQualified"} <= set(schema["$defs"])
    check = validator(schema)
    check.validate(nested_wire())
    with pytest.raises(ValidationError):
        check.validate(mutate(nested_wire(), ("data", "offers"), [{"theme": "cooking", "level": 1}]))


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def test_asyncapi_payloads_validate_with_refs_resolved_in_the_document(
    nested_registry: EventRegistry, tmp_path: Path
) -> None:
    write_all(tmp_path, nested_registry)
    doc = read_json(tmp_path / "asyncapi.json")
    for ref in refs(doc):
        resolve(doc, ref)  # no dangling reference anywhere (#/$defs would dangle here)
    payload_ref = doc["components"]["messages"]["enrollment_MentorQualified_v1"]["payload"]["$ref"]
    # Validate against the payload schema *inside* the document, so its
    # "#/components/schemas/..." references resolve the way AsyncAPI tools do.
    check = validator({"$ref": payload_ref, "components": doc["components"]})
    check.validate(nested_wire())
    with pytest.raises(ValidationError):
        check.validate(mutate(nested_wire(), ("tenant",)))


# --------------------------------------------------------------------------- AsyncAPI


def test_asyncapi_has_a_channel_per_topic_and_a_message_per_type(generated: tuple[Path, list[Path]]) -> None:
    out, _ = generated
    doc = read_json(out / "asyncapi.json")
    assert doc["asyncapi"] == "3.0.0"
    assert doc["servers"]["kafka"]["protocol"] == "kafka"

    by_context = registry.published().by_context()
    assert {ch["address"] for ch in doc["channels"].values()} == {topic_for_context(c) for c in by_context}
    messages = doc["components"]["messages"]
    assert {m["name"] for m in messages.values()} == set(PUBLISHED)

    for context, models in by_context.items():
        channel = doc["channels"][context]
        assert channel["address"] == topic_for_context(context)
        assert channel["servers"] == [{"$ref": "#/servers/kafka"}]
        assert set(channel["messages"]) == {message_id(m) for m in models}
        operation = doc["operations"][f"publish_{context}"]
        assert operation["action"] == "send"
        assert operation["channel"] == {"$ref": f"#/channels/{context}"}
        for model in models:
            message = messages[message_id(model)]
            assert message["contentType"] == "application/cloudevents+json"
            assert message["bindings"]["kafka"]["key"]["type"] == "string"  # key = subject
            payload = resolve(doc, message["payload"]["$ref"])
            assert payload["properties"]["type"]["const"] == model.event_type()
            assert "tenant" in payload["required"]

    for ref in refs(doc):
        resolve(doc, ref)


# --------------------------------------------------------------------------- CLI and committed copy


def test_cli_command_writes_and_lists_files(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("schemas")(schemas)

    @app.callback()
    def main() -> None:  # forces "binome schemas" to be a sub-command, as in libs.cli
        pass

    result = CliRunner().invoke(app, ["schemas", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "asyncapi.json") in result.output
    assert {f"{key}.schema.json" for key in PUBLISHED} == {p.name for p in (tmp_path / "events").iterdir()}
    assert read_json(tmp_path / "asyncapi.json") == read_json(REPO / "docs" / "events" / "asyncapi.json")


def test_committed_contracts_are_up_to_date(tmp_path: Path) -> None:
    committed = REPO / "docs" / "events"
    assert (committed / "asyncapi.json").exists(), "docs/events missing: run `binome schemas`"
    fresh = write_all(tmp_path, consumers=consumers_by_service(SERVICES))
    generated = {p.name for p in (committed / "events").glob("*.schema.json")}
    assert generated == {p.name for p in (tmp_path / "events").iterdir()}, "stale: run `binome schemas`"
    for path in fresh:
        twin = committed / path.relative_to(tmp_path)
        assert twin.exists() and twin.read_bytes() == path.read_bytes(), f"{twin} is stale: run `binome schemas`"


# --------------------------------------------------------------------------- what services consume


def test_every_consumer_has_a_receive_operation_per_context_it_reads() -> None:
    consumers = consumers_by_service(SERVICES)
    doc = asyncapi_document(consumers=consumers)
    assert set(consumers) == {"enrollment", "matching", "sessions", "evaluation", "insights", "notifications"}
    receive = {k: v for k, v in doc["operations"].items() if v["action"] == "receive"}
    expected = {f"receive_{c.name}_{ctx}" for cs in consumers.values() for c in cs for ctx in c.contexts}
    assert set(receive) == expected
    for consumer in (c for cs in consumers.values() for c in cs):
        for context in consumer.contexts:
            operation = receive[f"receive_{consumer.name}_{context}"]
            assert operation["channel"] == {"$ref": f"#/channels/{context}"}
            assert operation["bindings"]["kafka"]["groupId"]["enum"] == [consumer.name]
            channel = resolve(doc, operation["channel"]["$ref"])
            for ref in operation["messages"]:  # AsyncAPI: an operation's messages are its channel's
                assert ref["$ref"].startswith(f"#/channels/{context}/messages/")
                assert resolve(doc, ref["$ref"]) in channel["messages"].values()
    for ref in refs(doc):
        resolve(doc, ref)


class Declared:
    """A consumer that declares the types it handles (libs/messaging/dispatch.py)."""

    name = "declared"
    contexts = ("matching", "platform")

    @classmethod
    def handled_types(cls) -> tuple[str, ...]:
        return ("PairFormed", "ProbeRecorded")


def test_a_consumer_that_declares_its_types_receives_only_those() -> None:
    doc = asyncapi_document(consumers={"sessions": [Declared()]})
    receive = {k: v for k, v in doc["operations"].items() if v["action"] == "receive"}
    assert set(receive) == {"receive_declared_matching"}  # the platform context is not published
    assert [r["$ref"].rsplit("/", 1)[1] for r in receive["receive_declared_matching"]["messages"]] == [
        "matching_PairFormed_v1"
    ]
