"""Each service's inline read-table projector dispatches like every consumer
(``on_<EventClassName>``), handles only events of its own context, and
refuses an event it has no method for, as its isinstance chain did (a read
table that skipped one of its own events would be wrong for ever)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

import libs.events.contexts  # noqa: F401  (registers every event type)
from libs.domain.projector import InlineProjector
from libs.events.contexts.enrollment import Actor, WaveEnded, WaveEnrolmentClosed
from libs.events.contexts.directory import PersonDeleted
from libs.events.registry import new_envelope, registry
from services import SERVICES
from services.matching.adapters.read_tables import pair_doc
from services.sessions.adapters.projector import session_doc

INLINE = {s.name: s.read_tables for s in SERVICES if s.read_tables is not None}


class NoDatabase:
    """A connection no refused event may reach."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the projector wrote ({name}) before refusing")


class Recorder(InlineProjector):
    context = "enrollment"

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def on_WaveEnded(self, conn, envelope, event: WaveEnded) -> None:
        self.seen.append(type(event).__name__)


def wave(cls: type[WaveEnded] | type[WaveEnrolmentClosed]):
    event = cls(actor=Actor(subject="hr"), wave_id=uuid.uuid4(), programme_id=uuid.uuid4(), country="FR")
    return new_envelope(event, service="enrollment", subject=str(event.wave_id), tenant="acme")


def test_every_inline_projector_handles_events_of_its_own_context_only():
    assert set(INLINE) == {"directory", "enrollment", "evaluation", "matching", "sessions"}
    for service, projector in INLINE.items():
        assert issubclass(projector, InlineProjector)
        assert projector.context == service
        own = {model.__name__ for model in registry.by_context()[service]}
        assert set(projector.handled_types()) == own, service


def test_apply_calls_the_method_named_for_the_event_class():
    recorder = Recorder()
    asyncio.run(recorder.apply(NoDatabase(), [wave(WaveEnded)]))
    assert recorder.seen == ["WaveEnded"]


def test_an_own_event_without_a_method_is_refused():
    with pytest.raises(TypeError, match="no read table for binome.enrollment.WaveEnrolmentClosed.v1"):
        asyncio.run(Recorder().apply(NoDatabase(), [wave(WaveEnrolmentClosed)]))


def foreign(service: str):
    """An event of another context than ``service``'s."""
    if service != "directory":
        event = PersonDeleted(person_id=uuid.uuid4(), actor=Actor(subject="scim"))
        return new_envelope(event, service="directory", subject=str(event.person_id), tenant="acme")
    return wave(WaveEnded)


@pytest.mark.parametrize("service", sorted(INLINE))
def test_every_inline_projector_refuses_another_contexts_event(service):
    projector = INLINE[service](service)
    # Directory and enrollment translate a command's unique violations around
    # ``apply_log`` (enrollment in a savepoint): the refusal is in the core.
    apply = getattr(projector, "apply_log", projector.apply)
    with pytest.raises(TypeError, match=f"is not a {service} event"):
        asyncio.run(apply(NoDatabase(), [foreign(service)]))


def test_a_document_fold_refuses_an_event_it_has_no_method_for():
    envelope = wave(WaveEnded)
    with pytest.raises(TypeError, match="PairDoc folds no binome.enrollment.WaveEnded.v1"):
        pair_doc({}, envelope, registry.load(envelope))
    with pytest.raises(TypeError, match="SessionDoc folds no binome.enrollment.WaveEnded.v1"):
        session_doc({}, envelope, registry.load(envelope))
