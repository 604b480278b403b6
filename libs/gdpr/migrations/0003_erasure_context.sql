-- Which context recorded the erasure event (enrollment's ParticipantErased,
-- the directory's PersonErased): a service's compactor waits only for its
-- consumers that read that context (libs/gdpr/compaction.py).
ALTER TABLE {schema}.erased ADD COLUMN context text NOT NULL DEFAULT 'enrollment';
