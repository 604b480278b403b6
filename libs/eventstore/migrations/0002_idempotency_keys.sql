-- Idempotency-Key (libs/api/idempotency.py): the response of a request that
-- carried a key, stored in the same transaction as the command it ran.
-- {schema} is the service's schema.

CREATE TABLE {schema}.idempotency_keys (
    owner        text        NOT NULL,  -- the caller: organisation and subject
    key          text        NOT NULL,
    fingerprint  text        NOT NULL,  -- sha256 of method, path, query and body
    status       integer,               -- NULL only inside the claiming transaction
    headers      jsonb,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_keys_expires_at_idx ON {schema}.idempotency_keys (expires_at);
