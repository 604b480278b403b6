-- The event store of one service: the log, its outbox, and what each
-- consumer of this service has applied. {schema} is the service's schema.

CREATE TABLE {schema}.events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid        NOT NULL,
    stream_id       text        NOT NULL,
    version         integer     NOT NULL CHECK (version >= 1),
    type            text        NOT NULL,
    envelope        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The writing transaction: read_all orders by it so that a reader never
    -- passes an event whose transaction has not committed yet.
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);
CREATE INDEX events_transaction_position_idx ON {schema}.events (transaction_id, position);

-- Rows still to publish. The relay deletes a row once Kafka acknowledged it,
-- so there is no "last published position" that a late commit could fall
-- behind: a row committed late is simply still here on the next pass.
CREATE TABLE {schema}.outbox (
    position     bigint PRIMARY KEY REFERENCES {schema}.events (position),
    topic        text        NOT NULL,
    enqueued_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Idempotent consumers: one row per (consumer, event) applied or dead-lettered,
-- written in the same transaction as the read-model change.
CREATE TABLE {schema}.applied_events (
    consumer    text        NOT NULL,
    event_id    uuid        NOT NULL,
    outcome     text        NOT NULL DEFAULT 'applied' CHECK (outcome IN ('applied', 'dead_lettered')),
    reason      text,
    applied_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (consumer, event_id)
);
