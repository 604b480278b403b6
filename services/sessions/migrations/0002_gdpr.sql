-- GDPR: whose free text sessions dropped (written by the pair directory
-- consumer, adapters/erasure.py): an erased participant (every pair it was
-- in) or a pair whose notes passed the programme's retention. A rebuild of
-- the own read tables applies them again after replaying the log.
CREATE TABLE {schema}.forgotten (
    subject_id  uuid        PRIMARY KEY,  -- a participant id or a pair id
    kind        text        NOT NULL,     -- participant | pair_notes
    at          timestamptz NOT NULL
);
