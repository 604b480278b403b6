"""Events of the platform itself (the ``platform`` context).

``ProbeRecorded`` is what health probes, the pipeline benchmark and the
end-to-end smoke checks append: a real event type that flows through the
store, the relay, Kafka and a projection like every other one, without
touching a business context. Not part of the published contract
(``docs/events``): no service produces or consumes it in production.
"""

from __future__ import annotations

from libs.events.registry import DomainEvent, event


@event("platform", "ProbeRecorded", version=1)
class ProbeRecorded(DomainEvent):
    public = False

    probe: str
    value: int = 0
