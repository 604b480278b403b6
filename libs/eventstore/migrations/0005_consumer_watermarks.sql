-- Where each consumer of this service stands in each source context's log
-- (libs/messaging/watermarks.py): a checkpoint of the source's event store in
-- commit-safe order (writing transaction, position) at and before which the
-- consumer has applied (or parked) every event. It measures lag against the
-- log, and tells an empty broker what to carry again: only what follows.
CREATE TABLE {schema}.consumer_watermarks (
    consumer        text        NOT NULL,
    source          text        NOT NULL,   -- the source context (its service's schema)
    transaction_id  xid8        NOT NULL,
    position        bigint      NOT NULL,
    moved_at        timestamptz NOT NULL DEFAULT clock_timestamp(),  -- when it last moved forward
    PRIMARY KEY (consumer, source)
);
