-- The audit trail of one service: every change, every read of personal data
-- and every denied attempt, with who, what and the decision, never the
-- personal values themselves. Append-only: a trigger refuses UPDATE and
-- DELETE (only GDPR tooling with the table owner's rights could bypass it).
CREATE TABLE {schema}.audit_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    subject         text,                 -- the token's subject (null: no valid token)
    client_id       text,
    organisation    text,
    roles           text[] NOT NULL DEFAULT '{}',
    country         text,                 -- the object's country, when the handler knew it
    action          text NOT NULL,        -- "POST /v1/waves/{wave_id}:close"
    object          jsonb NOT NULL DEFAULT '{}',  -- the route's path parameters (ids only)
    decision        text NOT NULL CHECK (decision IN ('allowed', 'denied', 'invalid', 'failed')),
    status          integer NOT NULL,
    correlation_id  text
);
CREATE INDEX audit_log_subject_idx ON {schema}.audit_log (subject, at);
CREATE INDEX audit_log_at_idx ON {schema}.audit_log (at);

CREATE FUNCTION {schema}.audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON {schema}.audit_log
    FOR EACH ROW EXECUTE FUNCTION {schema}.audit_log_is_append_only();
