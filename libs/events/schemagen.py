"""Generate the event contracts (JSON Schema + AsyncAPI) from the registered
pydantic models, so they can never drift from the code.

Output of ``write_all(out)``::

    <out>/events/<type>.schema.json   one per event type: the WHOLE CloudEvents
                                      envelope, ``type`` fixed to the event's
                                      type string, ``data`` to its model
    <out>/asyncapi.json               AsyncAPI 3.0: one channel per context
                                      topic, one message per event type, a
                                      send operation per context and a
                                      receive operation per consumer and
                                      context it reads

Only the published types (``DomainEvent.public``) appear: a type that only
tests and benchmarks append is not part of the contract.

Design choices (why, not what):

* The envelope schema is produced by pydantic itself, from a throw-away
  subclass of ``Envelope`` whose ``type`` is ``Literal[<type>]`` and whose
  ``data`` is the event model. Pydantic then places the payload's nested
  models in ``$defs`` and writes the ``$ref``s that point at them; nothing is
  spliced by hand, so nested models and enums cannot end up dangling.
* The schema describes the *wire* (what ``serialization.dumps`` writes), hence
  ``mode="serialization"`` and a ``required`` list derived from the serializer:
  every attribute is always written except ``serialization.OPTIONAL_ATTRIBUTES``.
  Pydantic alone would mark ``id``/``time``/``specversion`` optional because
  the model has defaults for them, which is true for Python callers but not
  for a message on Kafka (CloudEvents requires ``id`` and ``specversion``).
* The AsyncAPI document holds every schema once under
  ``#/components/schemas`` (pydantic's ``models_json_schema`` with a
  ``ref_template``, as FastAPI does for OpenAPI): an embedded ``#/$defs/...``
  reference would resolve against the AsyncAPI document root and break.
* Personal fields carry ``x-personal: true`` and say how they are sealed
  (``DomainEvent``'s ``json_schema_extra``, so the mark follows the model
  wherever pydantic places it).
* What a service consumes is read from its consumers (``name``, ``contexts``
  and, where the consumer declares it, ``handled_types()``), passed in by
  the caller (``binome schemas``): never written by hand.
* Output is deterministic (sorted keys, fixed indentation, trailing newline)
  so the generated files can be committed and reviewed as diffs.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson
from pydantic import create_model
from pydantic.json_schema import models_json_schema

from libs.events import contexts as _contexts  # noqa: F401  (registers every event type)
from libs.events.envelope import Envelope, topic_for_context
from libs.events.registry import DomainEvent, EventRegistry
from libs.events.registry import registry as default_registry
from libs.events.serialization import OPTIONAL_ATTRIBUTES

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
# Structured content mode: the whole CloudEvent is the Kafka record value.
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
# Mirrors Envelope._source_is_binome (a Python validator, invisible to pydantic's
# schema generator). If Envelope ever declares Field(pattern=...), drop this.
SOURCE_PATTERN = "^/binome/"
SCHEMA_SUFFIX = ".schema.json"


class DeclaredConsumer(Protocol):
    """What the AsyncAPI document reads of a consumer (libs/messaging/consumer.Projection)."""

    name: str
    contexts: tuple[str, ...]


# --------------------------------------------------------------------------- #
# JSON Schema of one event type
# --------------------------------------------------------------------------- #


def envelope_model(model: type[DomainEvent]) -> type[Envelope]:
    """An ``Envelope`` subclass whose ``type`` and ``data`` are pinned to ``model``.

    Only used to generate schemas. The name must be a plain identifier: pydantic
    derives the ``$defs`` key from it (a dotted name would be cut at the last dot).
    """
    context = model.context[:1].upper() + model.context[1:]
    return create_model(  # type: ignore[call-overload,no-any-return]
        f"{context}{model.name}V{model.version}Envelope",
        __base__=Envelope,
        __doc__=(
            f"CloudEvents 1.0 structured envelope of {model.event_type()}, published on "
            f"Kafka topic {topic_for_context(model.context)} with the subject as key."
        ),
        type=(Literal[model.event_type()], ...),  # type: ignore[valid-type]
        data=(model, ...),
    )


def _wire_constraints(schema: dict[str, Any], model: type[DomainEvent]) -> dict[str, Any]:
    """What the wire guarantees beyond the pydantic model (see module docstring)."""
    schema["title"] = model.event_type()
    schema["required"] = sorted(name for name in schema["properties"] if name not in OPTIONAL_ATTRIBUTES)
    schema["properties"]["source"]["pattern"] = SOURCE_PATTERN
    return schema


def envelope_schema(model: type[DomainEvent]) -> dict[str, Any]:
    """Self-contained JSON Schema (draft 2020-12) of ``model``'s whole envelope."""
    schema = envelope_model(model).model_json_schema(mode="serialization")
    schema = _wire_constraints(schema, model)
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$comment"] = "Generated by libs/events/schemagen.py from the pydantic models. Do not edit."
    return schema


# --------------------------------------------------------------------------- #
# AsyncAPI 3.0
# --------------------------------------------------------------------------- #


def message_id(model: type[DomainEvent]) -> str:
    """AsyncAPI message key: ``<context>_<Name>_v<N>`` (ids may not hold dots
    in channel maps, and must be unique across channels in components)."""
    return f"{model.context}_{model.name}_v{model.version}"


def _summary(model: type[DomainEvent]) -> str:
    doc = (model.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else model.event_type()


def _project_version() -> str:
    try:
        return importlib.metadata.version("binome")
    except importlib.metadata.PackageNotFoundError:  # running from a bare checkout
        return "0.0.0"


def handled_by(consumer: DeclaredConsumer, models: Sequence[type[DomainEvent]]) -> list[type[DomainEvent]]:
    """The types of ``models`` a consumer handles: those named by its
    ``handled_types()`` (class names, libs/messaging/dispatch.py) when it
    declares them, else every type of the contexts it reads."""
    handled_types = getattr(consumer, "handled_types", None)
    if handled_types is None:
        return list(models)
    names = set(handled_types())
    return [model for model in models if model.__name__ in names]


def _receive_operations(
    consumers: Mapping[str, Sequence[DeclaredConsumer]], by_context: Mapping[str, list[type[DomainEvent]]]
) -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for service, declared in sorted(consumers.items()):
        for consumer in sorted(declared, key=lambda c: c.name):
            for context in sorted(set(consumer.contexts) & set(by_context)):
                handled = handled_by(consumer, by_context[context])
                if not handled:
                    continue
                operations[f"receive_{consumer.name}_{context}"] = {
                    "action": "receive",
                    "summary": f"The {service} service's consumer {consumer.name} reads the {context} events "
                    "it handles (consumer group of that name; other types are skipped).",
                    "channel": {"$ref": f"#/channels/{context}"},
                    "messages": [{"$ref": f"#/channels/{context}/messages/{message_id(m)}"} for m in handled],
                    "bindings": {"kafka": {"groupId": {"type": "string", "enum": [consumer.name]},
                                           "bindingVersion": KAFKA_BINDING_VERSION}},
                }
    return operations


def asyncapi_document(
    reg: EventRegistry = default_registry, consumers: Mapping[str, Sequence[DeclaredConsumer]] | None = None
) -> dict[str, Any]:
    """The AsyncAPI document of ``reg``'s published types; ``consumers``: each
    service's consumers (their receive operations)."""
    reg = reg.published()
    models = [reg.models[key] for key in sorted(reg.models)]
    envelopes = {model: envelope_model(model) for model in models}
    refs, top = models_json_schema(
        [(envelopes[model], "serialization") for model in models],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    messages: dict[str, Any] = {}
    for model in models:
        payload_ref = refs[(envelopes[model], "serialization")]
        # The envelope itself lives in components.schemas; tighten it there.
        _wire_constraints(schemas[payload_ref["$ref"].rsplit("/", 1)[1]], model)
        messages[message_id(model)] = {
            "name": model.event_type(),
            "title": f"{model.name} v{model.version}",
            "summary": _summary(model),
            "contentType": STRUCTURED_CONTENT_TYPE,
            "payload": payload_ref,
            "correlationId": {
                "description": "Shared by every event caused by one request.",
                "location": "$message.payload#/correlationid",
            },
            "bindings": {
                "kafka": {
                    # Key = subject (the aggregate id): one aggregate's events land
                    # on one partition, so its stream stays ordered.
                    "key": {"type": "string", "description": "The CloudEvents subject (aggregate id)."},
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for context, context_models in sorted(reg.by_context().items()):
        topic = topic_for_context(context)
        ids = [message_id(model) for model in context_models]
        channels[context] = {
            "address": topic,
            "title": topic,
            "description": f"Every event of the {context} context. Consumers must skip unknown types "
            "(never dead-letter them: a newer producer must not poison older consumers) and upcast old versions.",
            "servers": [{"$ref": "#/servers/kafka"}],
            "messages": {mid: {"$ref": f"#/components/messages/{mid}"} for mid in ids},
            "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING_VERSION}},
        }
        operations[f"publish_{context}"] = {
            "action": "send",
            "summary": f"The service owning the {context} context publishes its events (outbox relay).",
            "channel": {"$ref": f"#/channels/{context}"},
            "messages": [{"$ref": f"#/channels/{context}/messages/{mid}"} for mid in ids],
        }
    operations.update(_receive_operations(consumers or {}, reg.by_context()))

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:binome:events",
        "info": {
            "title": "Binome events",
            "version": _project_version(),
            "description": "Domain events of Binome as CloudEvents 1.0 structured JSON on Kafka. "
            "Generated from the pydantic models by libs/events/schemagen.py; do not edit.",
        },
        "defaultContentType": STRUCTURED_CONTENT_TYPE,
        "servers": {
            "kafka": {
                "host": "{bootstrap}",
                "protocol": "kafka",
                "description": "Kafka, or the embedded Kafka-protocol broker (Tansu).",
                "variables": {
                    "bootstrap": {
                        "default": "localhost:9092",
                        "description": "BINOME_KAFKA_BOOTSTRAP; the embedded broker picks a free port.",
                    }
                },
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


# --------------------------------------------------------------------------- #
# Files
# --------------------------------------------------------------------------- #


def _dump(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def write_all(
    out_dir: Path,
    reg: EventRegistry = default_registry,
    consumers: Mapping[str, Sequence[DeclaredConsumer]] | None = None,
) -> list[Path]:
    """Write every published event's schema and the AsyncAPI document; return the paths.

    ``<out>/events`` is owned by the generator: a ``*.schema.json`` no longer
    backed by a published type is deleted, so the directory mirrors the code.
    """
    events_dir = out_dir / "events"
    events_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    published = reg.published()
    for key in sorted(published.models):
        path = events_dir / f"{key}{SCHEMA_SUFFIX}"
        path.write_bytes(_dump(envelope_schema(published.models[key])))
        written.append(path)
    for stale in sorted(set(events_dir.glob(f"*{SCHEMA_SUFFIX}")) - set(written)):
        stale.unlink()
    asyncapi = out_dir / "asyncapi.json"
    asyncapi.write_bytes(_dump(asyncapi_document(reg, consumers)))
    written.append(asyncapi)
    return written
