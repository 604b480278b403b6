-- What the consumers of one service parked. {schema} is the service's schema.

-- An event a consumer can never apply (undecodable, invalid, refused by the
-- domain), written in the transaction that claims it in applied_events: the
-- broker may lose its dead-letter topic (the embedded one keeps nothing), this
-- table keeps the record's key and value so it can be redriven with no broker.
CREATE TABLE {schema}.dead_letters (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer         text        NOT NULL,
    event_id         uuid,                  -- NULL: the record did not decode
    event_type       text,
    tenant           text,                  -- the organisation, when the record says
    topic            text        NOT NULL,
    partition        integer     NOT NULL,
    "offset"         bigint      NOT NULL,
    source_position  bigint,                -- header binome-position, when present
    reason           text        NOT NULL,
    attempts         integer     NOT NULL,
    first_failed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_failed_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    record_key       bytea,
    record_value     bytea       NOT NULL,
    CONSTRAINT dead_letters_consumer_event_key UNIQUE (consumer, event_id)
);
CREATE INDEX dead_letters_consumer_idx ON {schema}.dead_letters (consumer, id);
