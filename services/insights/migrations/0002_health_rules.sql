-- Pair-health thresholds a global HR admin set for one programme (PUT
-- /v1/programmes/{id}/health-rules). Read-side configuration, not a fact of
-- the log: a rebuild keeps it. Unset thresholds take the defaults of
-- services/insights/health/rules.py. Every change records who made it.
CREATE TABLE {schema}.health_rules (
    programme_id  uuid PRIMARY KEY,
    organisation  text NOT NULL,
    rules         jsonb NOT NULL,
    updated_at    timestamptz NOT NULL,
    updated_by    text NOT NULL
);
