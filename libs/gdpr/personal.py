"""Sealing and opening the personal fields of events.

Before an event is stored, every string inside its ``personal_fields`` is
sealed with the data key its model names (``personal_key``, a dotted path into
``data``; usually the participant id, or the pair id for what two people
wrote together, owned by both). Everything downstream (outbox, Kafka, replays)
only ever sees sealed values; a reader opens them with the vault's keys just
before it loads the typed event. A value whose key was shredded opens as
``ERASED``: the event still loads, replays still work, and the person is gone.
An event with no plain personal value (none given, or only ``ERASED``) is
stored as it is, without asking the vault for a key: what is recorded about
an erased person after the erasure never needs the shredded key.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import asyncpg

from libs.events.envelope import Envelope
from libs.events.registry import DomainEvent, EventRegistry, registry
from libs.gdpr.cipher import is_sealed, key_id_of, open_sealed, seal
from libs.gdpr.vault import KeyVault

#: What a personal value reads as once its owner is erased.
ERASED = "[erased]"


def resolve(data: dict[str, Any], path: str) -> Any:
    """``data`` at a dotted ``path`` (``people.mentee_id``)."""
    value: Any = data
    for part in path.split("."):
        value = value[part]
    return value


def key_of(model: type[DomainEvent], data: dict[str, Any]) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """The data key id and its owners for one event's data."""
    key_id = uuid.UUID(str(resolve(data, model.personal_key)))
    owners = [uuid.UUID(str(resolve(data, path))) for path in model.personal_owners]
    return key_id, owners


def _map_strings(value: Any, fn) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    return value


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


class PersonalData:
    """Seals events on the write side and opens them on the read side."""

    def __init__(self, vault: KeyVault, events: EventRegistry = registry) -> None:
        self.vault = vault
        self.events = events

    def _personal_model(self, envelope: Envelope) -> type[DomainEvent] | None:
        model = self.events.models.get(envelope.type)
        return model if model is not None and model.personal_fields else None

    def vault_connection(self, pool: asyncpg.Pool, conn: asyncpg.Connection | None) -> asyncpg.Connection | None:
        """``conn`` (taken from ``pool``) when the vault lives in that same
        database, else None. A caller holding a pooled connection (in its
        transaction) must never wait for a second one of the same pool: under
        load the pool runs dry and every holder waits for every other."""
        return conn if conn is not None and self.vault.pool is pool else None

    async def seal(self, envelopes: Sequence[Envelope], *, conn: asyncpg.Connection | None = None) -> list[Envelope]:
        """``conn``: a connection to the vault's database the caller holds."""
        keys: dict[uuid.UUID, bytes] = {}
        sealed: list[Envelope] = []
        for envelope in envelopes:
            model = self._personal_model(envelope)
            if model is None:
                sealed.append(envelope)
                continue
            fields = model.personal_fields & envelope.data.keys()
            if not any(_needs_sealing(s) for field in fields for s in _strings(envelope.data[field])):
                # Nothing personal to seal (no note, or only ``ERASED``): no key is
                # needed, so an event recorded after an erasure (a pair dissolved
                # because a member was erased) never asks for the shredded key, nor
                # makes a new one owned by the erased person.
                sealed.append(envelope)
                continue
            key_id, owners = key_of(model, envelope.data)
            if key_id not in keys:
                keys[key_id] = await self.vault.key_for(key_id, owners, envelope.country, conn=conn)
            key = keys[key_id]
            data = dict(envelope.data)
            for field in fields:
                data[field] = _map_strings(data[field], lambda s: seal(s, key_id, key) if _needs_sealing(s) else s)
            sealed.append(envelope.model_copy(update={"data": data}))
        return sealed

    async def open(self, envelopes: Sequence[Envelope], *, conn: asyncpg.Connection | None = None) -> list[Envelope]:
        """The same envelopes with personal values opened (or ``ERASED``)."""
        sealed = [list(_sealed_strings(e.data)) for e in envelopes]  # walked once per envelope
        key_ids = {key_id_of(s) for strings in sealed for s in strings}
        if not key_ids:
            return list(envelopes)
        keys = await self.vault.keys(key_ids, conn=conn)

        def open_one(value: str) -> str:
            if not is_sealed(value):
                return value
            key = keys.get(key_id_of(value))
            return open_sealed(value, key) if key is not None else ERASED

        return _each_sealed(envelopes, sealed, open_one)

    async def open_for(
        self, reader: object, envelopes: Sequence[Envelope], *, conn: asyncpg.Connection | None = None
    ) -> list[Envelope]:
        """``open``, or ``withheld`` for a reader (a consumer) whose
        ``opens_personal_values`` is False: it never needs one (a reader that
        does not say gets them opened)."""
        if getattr(reader, "opens_personal_values", True):
            return await self.open(envelopes, conn=conn)
        return withheld(envelopes)


def withheld(envelopes: Sequence[Envelope]) -> list[Envelope]:
    """The same envelopes with every sealed personal value read as ``ERASED``,
    without asking the vault: for a reader that uses no personal value (a
    consumer whose ``opens_personal_values`` is False). The events load as
    an erased person's do."""
    sealed = [list(_sealed_strings(e.data)) for e in envelopes]
    return _each_sealed(envelopes, sealed, lambda value: ERASED if is_sealed(value) else value)


def _each_sealed(envelopes: Sequence[Envelope], sealed: list[list[str]], fn: Callable[[str], str]) -> list[Envelope]:
    """``fn`` applied to every string of the envelopes that hold a sealed one."""
    return [
        e.model_copy(update={"data": _map_strings(e.data, fn)}) if strings else e
        for e, strings in zip(envelopes, sealed, strict=True)
    ]


def known(value: str | None) -> str | None:
    """A personal value as a read model keeps it: an erased or empty one is
    no value."""
    return None if value in (None, "", ERASED) else value


def _needs_sealing(value: str) -> bool:
    """A plain personal value: not sealed yet, and not ``ERASED`` (what a
    shredded value opened as carries nothing of the person)."""
    return not is_sealed(value) and value != ERASED


def _sealed_strings(data: dict[str, Any]) -> Iterable[str]:
    return (s for s in _strings(data) if is_sealed(s))
