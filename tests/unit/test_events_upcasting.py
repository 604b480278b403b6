"""Schema evolution: deploying a new event version over a log of old ones.

Every test builds its own ``EventRegistry`` so the process-wide one (filled by
``@event`` at import time) is never touched; ``declare`` is the test's stand-in
for the ``@event`` decorator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal

import pytest

from libs.events import DomainEvent, EventRegistry, UnknownEventType, new_envelope, registry
from libs.events.serialization import dumps, loads

CONTEXT = "sessions"
NAME = "SessionScheduled"


def declare(reg: EventRegistry, version: int) -> Callable[[type[DomainEvent]], type[DomainEvent]]:
    """``@event(CONTEXT, NAME, version=...)`` against ``reg`` instead of the global registry."""

    def decorate(cls: type[DomainEvent]) -> type[DomainEvent]:
        cls.context, cls.name, cls.version = CONTEXT, NAME, version
        reg.register(cls)
        return cls

    return decorate


def type_of(version: int) -> str:
    return f"binome.{CONTEXT}.{NAME}.v{version}"


# Three generations of one event, as they would have been written over time.


class SessionScheduledV1(DomainEvent):
    session_id: str
    duration: str  # "45 min": free text, a v1 design mistake
    topic: str  # "ai, cloud"


class SessionScheduledV2(DomainEvent):
    session_id: str
    duration_minutes: int
    topic: str
    mode: Literal["face_to_face", "remote"] = "remote"  # new, defaulted


class SessionScheduledV3(DomainEvent):
    session_id: str
    duration_minutes: int
    topics: list[str]  # split
    mode: Literal["face_to_face", "remote"] = "remote"


def v1_to_v2(data: dict) -> dict:
    data["duration_minutes"] = int(data.pop("duration").split()[0])
    return data


def v2_to_v3(data: dict) -> dict:
    data["topics"] = [topic.strip() for topic in data.pop("topic").split(",") if topic.strip()]
    return data


@pytest.fixture
def reg() -> EventRegistry:
    return EventRegistry(models={}, upcasters={})


@pytest.fixture(autouse=True)
def global_registry_untouched() -> Iterator[None]:
    before = (dict(registry.models), dict(registry.upcasters))
    yield
    assert (registry.models, registry.upcasters) == before


def store(payload: DomainEvent, sequence: int) -> bytes:
    """What the event store / Kafka keeps: the serialised envelope, forever."""
    return dumps(new_envelope(payload, service="sessions", subject="session-1", tenant="acme", sequence=sequence))


@pytest.fixture
def v1_log(reg: EventRegistry) -> list[bytes]:
    declare(reg, 1)(SessionScheduledV1)
    return [
        store(SessionScheduledV1(session_id="s1", duration="45 min", topic="ai, cloud"), 1),
        store(SessionScheduledV1(session_id="s2", duration="30 minutes", topic="data"), 2),
    ]


def test_v1_loads_as_v1_before_the_upgrade(reg: EventRegistry, v1_log: list[bytes]) -> None:
    loaded = reg.load(loads(v1_log[0]))
    assert loaded == SessionScheduledV1(session_id="s1", duration="45 min", topic="ai, cloud")


def test_deploying_v2_upcasts_stored_v1_events(reg: EventRegistry, v1_log: list[bytes]) -> None:
    # "Deploy" v2: new model plus the upcaster from v1. The log is not rewritten.
    declare(reg, 2)(SessionScheduledV2)
    reg.register_upcaster(type_of(1), v1_to_v2)

    first, second = (reg.load(loads(raw)) for raw in v1_log)
    assert first == SessionScheduledV2(session_id="s1", duration_minutes=45, topic="ai, cloud", mode="remote")
    assert second == SessionScheduledV2(session_id="s2", duration_minutes=30, topic="data", mode="remote")
    assert loads(v1_log[0]).type == type_of(1)  # the stored fact still says v1

    # Events written after the deployment are v2 and load as they are.
    fresh = store(SessionScheduledV2(session_id="s3", duration_minutes=60, topic="ux", mode="face_to_face"), 3)
    assert reg.load(loads(fresh)) == SessionScheduledV2(
        session_id="s3", duration_minutes=60, topic="ux", mode="face_to_face"
    )


def test_upcasters_chain_v1_to_v2_to_v3(reg: EventRegistry, v1_log: list[bytes]) -> None:
    declare(reg, 2)(SessionScheduledV2)
    reg.register_upcaster(type_of(1), v1_to_v2)
    v2_raw = store(SessionScheduledV2(session_id="s3", duration_minutes=60, topic="ux", mode="face_to_face"), 3)

    declare(reg, 3)(SessionScheduledV3)
    reg.register_upcaster(type_of(2), v2_to_v3)

    assert reg.load(loads(v1_log[0])) == SessionScheduledV3(
        session_id="s1", duration_minutes=45, topics=["ai", "cloud"], mode="remote"
    )
    assert reg.load(loads(v2_raw)) == SessionScheduledV3(
        session_id="s3", duration_minutes=60, topics=["ux"], mode="face_to_face"
    )
    assert reg.upcast(type_of(1), {"session_id": "s", "duration": "5 min", "topic": "a"}) == (
        type_of(3),
        {"session_id": "s", "duration_minutes": 5, "topics": ["a"]},
    )


def test_loading_does_not_alter_the_stored_envelope(reg: EventRegistry, v1_log: list[bytes]) -> None:
    declare(reg, 2)(SessionScheduledV2)
    reg.register_upcaster(type_of(1), v1_to_v2)  # pops "duration" from what it is given
    envelope = loads(v1_log[0])
    reg.load(envelope)
    reg.load(envelope)  # a replay sees the same facts
    assert envelope.data == {"session_id": "s1", "duration": "45 min", "topic": "ai, cloud"}


def test_upcaster_to_a_version_without_model_is_unknown(reg: EventRegistry, v1_log: list[bytes]) -> None:
    reg.register_upcaster(type_of(1), v1_to_v2)  # deployed without the v2 model: a bug
    with pytest.raises(UnknownEventType):
        reg.load(loads(v1_log[0]))


def test_unknown_type_raises(reg: EventRegistry) -> None:
    declare(reg, 1)(SessionScheduledV1)
    ghost = loads(v1_like(type_="binome.sessions.SessionHaunted.v1"))
    with pytest.raises(UnknownEventType, match="SessionHaunted"):
        reg.load(ghost)
    future = loads(v1_like(type_=type_of(9)))  # written by a newer deployment
    with pytest.raises(UnknownEventType):
        reg.load(future)


def v1_like(type_: str) -> bytes:
    envelope = loads(store(SessionScheduledV1(session_id="s", duration="1 min", topic="t"), 1))
    return dumps(envelope.model_copy(update={"type": type_}))


def test_registering_a_type_twice_with_different_classes_raises(reg: EventRegistry) -> None:
    declare(reg, 1)(SessionScheduledV1)
    declare(reg, 1)(SessionScheduledV1)  # the same class again (re-import) is harmless

    class Impostor(DomainEvent):
        session_id: str

    with pytest.raises(ValueError, match="registered twice"):
        declare(reg, 1)(Impostor)
    assert reg.models[type_of(1)] is SessionScheduledV1


def test_a_second_upcaster_from_the_same_type_raises(reg: EventRegistry) -> None:
    reg.register_upcaster(type_of(1), v1_to_v2)
    with pytest.raises(ValueError, match="exists already"):
        reg.register_upcaster(type_of(1), v2_to_v3)
