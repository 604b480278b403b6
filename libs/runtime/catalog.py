"""Who produces and who consumes each event type, read from the code
(``binome events``).

The producer of an event of context ``<context>`` is the service named
``<context>``: the only writer of topic ``binome.<context>.events``. Its
consumers are the services' consumers (``ServiceDefinition.projections``,
each a ``libs.messaging.dispatch.Consumer``) that read the context and have an
``on_<EventClassName>`` method for it, and the producer's own inline
projector (``ServiceDefinition.read_tables``, a
``libs.domain.projector.InlineProjector``), which writes its read tables in the
transaction that appends the event (kind ``inline``): it must handle every
type of its context, or appending one would fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from libs.domain.projector import InlineProjector
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
    consumer: str  # its name: the consumer group (an inline projector: ``<service>-read-tables``)
    method: str  # ``<ConsumerClass>.on_<EventClassName>``
    kind: str = "consumer"  # or "inline": the producer's own read tables, in its transaction


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
                {"service": c.service, "consumer": c.consumer, "method": c.method, "kind": c.kind}
                for c in self.consumers
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


def inline_projectors_of(services: Sequence[ServiceDefinition]) -> list[tuple[str, type[InlineProjector]]]:
    """Every service's inline read-table projector, as (service name, class)."""
    return [(s.name, s.read_tables) for s in services if s.read_tables is not None]


def routes(services: Sequence[ServiceDefinition], registry: EventRegistry) -> list[Route]:
    """Every registered event type (newest version of each name first), in
    context then name order, with its producer and its consumers (the
    producer's inline projector first)."""
    owners = {service.name for service in services}
    consumers = consumers_of(services)
    inline = inline_projectors_of(services)
    result = []
    for context, models in sorted(registry.by_context().items()):
        producer = context if context in owners else PRODUCERS_OUTSIDE_SERVICES.get(context)
        for model in sorted(models, key=lambda m: (m.name, -m.version)):
            name = model.__name__
            handling = tuple(
                Handling(service, f"{service}-read-tables", projector.method_of(name), kind="inline")
                for service, projector in inline
                if projector.context == context and name in projector.handled_types()
            ) + tuple(
                Handling(service, consumer.name, f"{type(consumer).__name__}.on_{name}")
                for service, consumer in consumers
                if context in consumer.contexts and name in type(consumer).handled_types()
            )
            result.append(Route(model.event_type(), context, name, producer, handling))
    return result


def gaps(services: Sequence[ServiceDefinition], registry: EventRegistry) -> list[str]:
    """What makes the catalogue incomplete: an event type without a producer,
    a consumer method for a type that none of its contexts defines, an inline
    projector of another context than its service's, with a method for a type
    its context does not define, or without one for a type it does."""
    problems = [f"{r.type}: no producer" for r in routes(services, registry) if r.producer is None]
    names = {(model.context, model.__name__) for model in registry.models.values()}
    for service, projector in inline_projectors_of(services):
        if projector.context != service:
            problems.append(f"{service}: {projector.__name__} projects {projector.context!r}, not its own context")
        own = {name for context, name in names if context == projector.context}
        handled = set(projector.handled_types())
        problems += [f"{service}: {projector.__name__}.on_{n} handles no event type of {projector.context!r}"
                     for n in sorted(handled - own)]
        problems += [f"{service}: {projector.__name__} has no method for its own {n}" for n in sorted(own - handled)]
    for service, consumer in consumers_of(services):
        for handled in type(consumer).handled_types():
            if not any((context, handled) in names for context in consumer.contexts):
                problems.append(
                    f"{service}: {type(consumer).__name__}.on_{handled} handles no event type of {consumer.contexts}"
                )
    return problems


def consumers_by_service(services: Sequence[ServiceDefinition]) -> dict[str, list[Consumer]]:
    """Every service's consumers, by service: the AsyncAPI document's receive
    operations (``binome schemas``)."""
    found: dict[str, list[Consumer]] = {}
    for service, consumer in consumers_of(services):
        found.setdefault(service, []).append(consumer)
    return found

