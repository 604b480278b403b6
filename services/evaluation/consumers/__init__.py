"""The evaluation service's consumers: one module per consumer the consumer
runtime feeds, each a ``libs.messaging.dispatch.Consumer`` (``on_<EventClassName>``
methods; ``binome events`` lists them all)."""
