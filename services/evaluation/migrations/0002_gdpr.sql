-- GDPR: participants whose free text evaluation dropped (written by the
-- intake, adapters/erasure.py); a rebuild of the own read tables drops it again.
CREATE TABLE {schema}.forgotten (
    participant_id  uuid        PRIMARY KEY,
    at              timestamptz NOT NULL
);
