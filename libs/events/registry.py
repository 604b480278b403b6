"""Event types: the base class of every event payload, the registry from the
CloudEvents ``type`` string to its pydantic model, and upcasters.

An event payload is a pydantic model declared once, in ``libs/events/contexts/
<context>.py``, with the ``@event`` decorator::

    @event("enrollment", "ProgrammeCreated", version=1)
    class ProgrammeCreated(DomainEvent):
        programme_id: UUID
        ...

Changing an event's meaning makes a new version (``version=2``); the old
version stays readable through an upcaster that turns its ``data`` into the
next version's ``data``::

    @upcaster("binome.enrollment.ProgrammeCreated.v1")
    def _v1_to_v2(data: dict) -> dict: ...

``load(envelope)`` then returns the newest model for any stored version.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from libs.events.envelope import Envelope, event_type_name


#: How the JSON Schemas mark a personal field (``x-personal``), and what they say of it.
PERSONAL_KEYWORD = "x-personal"
SEALED_DESCRIPTION = (
    "Personal data, sealed on the wire: every string in it is enc:v1:<base64url of key id, nonce and "
    "ciphertext>, opened with its owner's data key; once the owner is erased the key is gone and it "
    "cannot be opened."
)


def _mark_personal(schema: dict[str, Any], cls: type[DomainEvent]) -> None:
    """pydantic's ``json_schema_extra`` hook: the model's own schema, wherever
    it is placed (``$defs`` of an event schema, AsyncAPI components)."""
    for name in cls.personal_fields:
        prop = schema["properties"][name]
        prop[PERSONAL_KEYWORD] = True
        prop["description"] = SEALED_DESCRIPTION


class DomainEvent(BaseModel):
    """Base of every event payload (the envelope's ``data``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_mark_personal)

    context: ClassVar[str]
    name: ClassVar[str]
    version: ClassVar[int]
    #: False for a type only tests and benchmarks append: registered (so it
    #: flows like any other), but not in the published contracts (docs/events).
    public: ClassVar[bool] = True
    #: Names of top-level fields holding personal data: every string in them
    #: is sealed with a data key before the event is stored (libs/gdpr).
    personal_fields: ClassVar[frozenset[str]] = frozenset()
    #: Dotted path in ``data`` to the id of the key that seals them, and the
    #: paths of the participants who own that key (erasing any one of them
    #: shreds it). Pair events use the pair id, owned by both people.
    personal_key: ClassVar[str] = "participant_id"
    personal_owners: ClassVar[tuple[str, ...]] = ("participant_id",)

    @classmethod
    def event_type(cls) -> str:
        return event_type_name(cls.context, cls.name, cls.version)


E = TypeVar("E", bound=type[DomainEvent])
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownEventType(LookupError):
    """A ``type`` nobody registered (a newer producer's): a consumer skips it
    and counts it, never dead-letters it."""


@dataclass
class EventRegistry:
    models: dict[str, type[DomainEvent]]
    upcasters: dict[str, Upcaster]

    def register(self, model: type[DomainEvent]) -> None:
        key = model.event_type()
        existing = self.models.get(key)
        if existing is not None and existing is not model:
            raise ValueError(f"{key} is registered twice ({existing.__qualname__}, {model.__qualname__})")
        self.models[key] = model

    def register_upcaster(self, from_type: str, fn: Upcaster) -> None:
        if from_type in self.upcasters:
            raise ValueError(f"an upcaster from {from_type} exists already")
        self.upcasters[from_type] = fn

    def upcast(self, type_: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Follow upcasters from ``type_`` to the newest version that exists."""
        while type_ in self.upcasters:
            data = self.upcasters[type_](copy.deepcopy(data))  # never touch the stored envelope
            prefix, _, version = type_.rpartition(".v")
            type_ = f"{prefix}.v{int(version) + 1}"
        return type_, data

    def load(self, envelope: Envelope) -> DomainEvent:
        """The typed payload of an envelope, upcast to the current version."""
        type_, data = self.upcast(envelope.type, envelope.data)
        model = self.models.get(type_)
        if model is None:
            raise UnknownEventType(envelope.type)
        return model.model_validate(data)

    def by_context(self) -> dict[str, list[type[DomainEvent]]]:
        grouped: dict[str, list[type[DomainEvent]]] = {}
        for key in sorted(self.models):
            model = self.models[key]
            grouped.setdefault(model.context, []).append(model)
        return grouped

    def published(self) -> EventRegistry:
        """The types of the public contract (``DomainEvent.public``), upcasters aside."""
        return EventRegistry(models={k: m for k, m in self.models.items() if m.public}, upcasters={})


#: The process-wide registry that ``@event`` fills.
registry = EventRegistry(models={}, upcasters={})


def event(context: str, name: str, *, version: int = 1) -> Callable[[E], E]:
    """Class decorator: declare an event payload model and register it."""

    def decorate(cls: E) -> E:
        cls.context = context
        cls.name = name
        cls.version = version
        registry.register(cls)
        return cls

    return decorate


def upcaster(from_type: str) -> Callable[[Upcaster], Upcaster]:
    """Function decorator: turn ``from_type``'s data into the next version's."""

    def decorate(fn: Upcaster) -> Upcaster:
        registry.register_upcaster(from_type, fn)
        return fn

    return decorate


def new_envelope(
    payload: DomainEvent,
    *,
    service: str,
    subject: str,
    tenant: str,
    sequence: int = 1,
    country: str | None = None,
    correlationid: str | None = None,
    causationid: str | None = None,
    event_id: uuid.UUID | None = None,
) -> Envelope:
    """Wrap a payload in its CloudEvents envelope.

    ``sequence`` is provisional: the event store sets the real one on append.
    ``event_id`` defaults to a new UUID; pass a deterministic one to make a
    retried write idempotent (the store ignores an append it already has).
    """
    return Envelope(
        id=event_id or uuid.uuid4(),
        source=f"/binome/{service}",
        type=payload.event_type(),
        subject=subject,
        data=payload.model_dump(mode="json"),
        sequence=sequence,
        tenant=tenant,
        country=country,
        correlationid=correlationid,
        causationid=causationid,
    )
