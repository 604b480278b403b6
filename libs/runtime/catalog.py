"""Who produces and who consumes each event type, read from the code
(``binome events``).

The producer of an event of context ``<context>`` is the service named
``<context>``: the only writer of topic ``binome.<context>.events``. Its
consumers are the services' consumers (``ServiceDefinition.projections``,
each a ``libs.messaging.dispatch.Consumer``) that read the context and have an
``on_<EventClassName>`` method for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from libs.events.registry import EventRegistry
from libs.eventstore.store import EventStore
from libs.messaging.dispatch import Consumer
from libs.runtime.service import ServiceContext, ServiceDefinition
from libs.settings import Settings

#: Contexts no service owns, and who appends their events instead.
PRODUCERS_OUTSIDE_SERVICES = {"platform": "probes (tests/, bench/)"}


@dataclass(frozen=True)
class Handling:
    """A consumer that handles an event type: where, and with which method."""

    service: str
    consumer: str  # its name: the consumer group
    method: str  # ``<ConsumerClass>.on_<EventClassName>``


@dataclass(frozen=True)
class Route:
    """One event type, its producer and its consumers."""

    type: str  # the CloudEvents ``type``, binome.<context>.<Name>.v<N>
    context: str
    name: str
    producer: str | None
    consumers: tuple[Handling, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "type": self.type,
            "context": self.context,
            "name": self.name,
            "producer": self.producer,
            "consumers": [
                {"service": c.service, "consumer": c.consumer, "method": c.method} for c in self.consumers
            ],
        }


def offline_context(service: ServiceDefinition) -> ServiceContext:
    """A context to build a service's consumers without servers: building one
    only keeps the pool and the store (nothing connects until it runs)."""
    return ServiceContext(
        name=service.name,
        pool=None,  # type: ignore[arg-type]
        store=EventStore(None, service.schema),  # type: ignore[arg-type]
        bootstrap="",
        settings=Settings(),
        verifier=None,  # type: ignore[arg-type]
    )


def consumers_of(services: Sequence[ServiceDefinition]) -> list[tuple[str, Consumer]]:
    """Every service's consumers, as (service name, consumer)."""
    found = []
    for service in services:
        for consumer in service.projections(offline_context(service)):
            if not isinstance(consumer, Consumer):
                raise TypeError(f"{service.name}: {consumer!r} does not dispatch through libs.messaging.dispatch")
            found.append((service.name, consumer))
    return found


def routes(services: Sequence[ServiceDefinition], registry: EventRegistry) -> list[Route]:
    """Every registered event type (newest version of each name first), in
    context then name order, with its producer and its consumers."""
    owners = {service.name for service in services}
    consumers = consumers_of(services)
    result = []
    for context, models in sorted(registry.by_context().items()):
        producer = context if context in owners else PRODUCERS_OUTSIDE_SERVICES.get(context)
        for model in sorted(models, key=lambda m: (m.name, -m.version)):
            handling = tuple(
                Handling(service, consumer.name, f"{type(consumer).__name__}.on_{model.__name__}")
                for service, consumer in consumers
                if context in consumer.contexts and model.__name__ in type(consumer).handled_types()
            )
            result.append(Route(model.event_type(), context, model.__name__, producer, handling))
    return result


def gaps(services: Sequence[ServiceDefinition], registry: EventRegistry) -> list[str]:
    """What makes the catalogue incomplete: an event type without a producer,
    a consumer method for a type that none of its contexts defines."""
    problems = [f"{r.type}: no producer" for r in routes(services, registry) if r.producer is None]
    names = {(model.context, model.__name__) for model in registry.models.values()}
    for service, consumer in consumers_of(services):
        for handled in type(consumer).handled_types():
            if not any((context, handled) in names for context in consumer.contexts):
                problems.append(
                    f"{service}: {type(consumer).__name__}.on_{handled} handles no event type of {consumer.contexts}"
                )
    return problems
