-- Erasure completes on disk (libs/gdpr/compaction.py). Deleting a key or
-- scrubbing a row leaves the old bytes in the relation files until they are
-- rewritten, so an erasure is complete only once every service that keeps
-- read tables has rewritten them after applying it.
--
-- event_id: the ParticipantErased event each service's consumers must have
-- applied (scrubbed their rows) before their tables are rewritten.
ALTER TABLE {schema}.erased ADD COLUMN event_id uuid;

-- The services whose rewrite an erasure waits for (each registers itself
-- when its compactor starts).
CREATE TABLE {schema}.compactors (
    service        text PRIMARY KEY,
    registered_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per (erasure, service) once that service rewrote its files.
CREATE TABLE {schema}.compactions (
    participant_id  uuid NOT NULL REFERENCES {schema}.erased (participant_id),
    service         text NOT NULL,
    compacted_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (participant_id, service)
);
