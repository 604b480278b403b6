-- Webhooks to HR platforms (entrypoints/webhooks.py, service_layer/webhook_*.py).
--
-- An endpoint belongs to one organisation; ``countries`` NULL: every event of
-- the organisation (an HR admin's endpoint), else only events of those
-- countries (a committee's endpoint). Its signing secrets are sealed with the
-- endpoint's own data key in the GDPR vault (key id = endpoint id), never
-- stored in plaintext; deleting the endpoint shreds that key. During a
-- rotation the previous secret still signs until ``previous_secret_until``.

CREATE TABLE {schema}.webhook_endpoints (
    endpoint_id           uuid        PRIMARY KEY,
    organisation          text        NOT NULL,
    url                   text        NOT NULL,
    event_types           text[]      NOT NULL,
    countries             text[],
    description           text,
    secret                text        NOT NULL,
    previous_secret       text,
    previous_secret_until timestamptz,
    enabled               boolean     NOT NULL DEFAULT true,
    disabled_reason       text,
    disabled_at           timestamptz,
    -- First failure since the last success (NULL: healthy); a day of
    -- failures disables the endpoint.
    failing_since         timestamptz,
    created_by            text        NOT NULL,
    created_at            timestamptz NOT NULL,
    updated_by            text        NOT NULL,
    updated_at            timestamptz NOT NULL
);

CREATE INDEX webhook_endpoints_by_organisation ON {schema}.webhook_endpoints (organisation, endpoint_id);

-- One event to one endpoint. ``body`` is the CloudEvent sent, as stored
-- (personal fields withheld: domain/webhooks.py). ``due_at`` is on the
-- platform clock; the worker claims due rows with FOR UPDATE SKIP LOCKED, so
-- two instances never send the same delivery at once.
CREATE TABLE {schema}.webhook_deliveries (
    delivery_id      uuid        PRIMARY KEY,
    endpoint_id      uuid        NOT NULL REFERENCES {schema}.webhook_endpoints ON DELETE CASCADE,
    organisation     text        NOT NULL,
    event_id         uuid        NOT NULL,
    event_type       text        NOT NULL,
    body             jsonb       NOT NULL,
    status           text        NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         int         NOT NULL DEFAULT 0,
    due_at           timestamptz NOT NULL,
    last_attempt_at  timestamptz,
    last_status_code int,
    last_error       text,
    created_at       timestamptz NOT NULL,
    delivered_at     timestamptz,
    UNIQUE (endpoint_id, event_id)
);

CREATE INDEX webhook_deliveries_due ON {schema}.webhook_deliveries (due_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON {schema}.webhook_deliveries (endpoint_id, status, delivery_id);
