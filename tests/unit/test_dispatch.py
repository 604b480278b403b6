"""The consumers' one way of dispatching: ``on_<EventClassName>``, others ignored."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from libs.events.contexts.enrollment import ParticipantEnrolled, WaveEnded, WaveEnrolmentClosed
from libs.events.registry import registry
from libs.messaging.dispatch import Consumer
from services.evaluation.consumers.intake import Intake
from services.insights.consumers.insights import InsightsProjection
from services.matching.consumers.candidate_pool import CandidatePool
from services.notifications.consumers.people import People
from services.notifications.consumers.webhook_fanout import WebhookFanout
from services.sessions.consumers.pair_directory import PairDirectory


class Recorder(Consumer):
    name = "recorder"
    contexts = ("enrollment",)

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    async def on_WaveEnded(self, conn, envelope, event: WaveEnded) -> None:
        self.seen.append(("ended", envelope))


def wave_event(cls):
    return cls.model_construct(wave_id="w", programme_id="p")


def test_handle_calls_the_method_named_for_the_event_class_and_ignores_others():
    recorder = Recorder()
    asyncio.run(recorder.handle(None, "env-1", wave_event(WaveEnded)))
    asyncio.run(recorder.handle(None, "env-2", wave_event(WaveEnrolmentClosed)))  # no method: ignored
    assert recorder.seen == [("ended", "env-1")]


def test_handle_batch_applies_in_delivery_order():
    recorder = Recorder()
    a, b, c = (SimpleNamespace(correlationid=None, id=n) for n in "abc")
    items = [(a, wave_event(WaveEnded)), (b, wave_event(WaveEnrolmentClosed)), (c, wave_event(WaveEnded))]
    asyncio.run(recorder.handle_batch(None, items))
    assert [env.id for _, env in recorder.seen] == ["a", "c"]


def test_handled_types_lists_the_methods():
    assert Recorder.handled_types() == ("WaveEnded",)
    assert Recorder().handler_for(wave_event(WaveEnrolmentClosed)) is None


def test_every_service_consumer_dispatches_through_the_base():
    for consumer in (CandidatePool, PairDirectory, Intake, InsightsProjection):
        assert issubclass(consumer, Consumer)
        assert consumer.handled_types(), consumer
    assert "PairFormed" in InsightsProjection.handled_types()  # its fact classes' methods count


def every_consumer() -> list[type[Consumer]]:
    found, todo = [], [Consumer]
    while todo:
        cls = todo.pop()
        found += cls.__subclasses__()
        todo += cls.__subclasses__()
    return found


def test_handles_agrees_with_handler_for_on_every_registered_type():
    """The runtime neither opens nor loads what ``handles`` refuses: it must
    refuse exactly what ``handler_for`` would ignore."""
    consumers = every_consumer()
    assert {PairDirectory, WebhookFanout, People} <= set(consumers)
    for cls in consumers:
        consumer = object.__new__(cls)  # dispatch depends on the class alone
        for model in registry.models.values():
            event = model.model_construct()
            assert consumer.handles(model) == (consumer.handler_for(event) is not None), (cls, model)
    assert not PairDirectory.handles(object.__new__(PairDirectory), ParticipantEnrolled)
    assert object.__new__(WebhookFanout).handles(ParticipantEnrolled)
