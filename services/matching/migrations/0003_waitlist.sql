-- The waitlist (service_layer/waitlist.py): mentees a run left unmatched for
-- want of a seat (capacity_exhausted) or of any feasible mentor
-- (no_feasible_partner), until a pair is proposed to them. Written only by
-- ReadTables from matching's own events (MatchingRunCompleted, PairProposed),
-- so `binome replay matching read-tables` rebuilds it. `since` is when the
-- mentee first waited (a later run keeps it: the place in the queue is kept).
CREATE TABLE {schema}.waitlist (
    mentee_id     uuid        PRIMARY KEY,
    organisation  text        NOT NULL,
    programme_id  uuid        NOT NULL,
    wave_id       uuid        NOT NULL,
    reason        text        NOT NULL,
    run_id        uuid        NOT NULL,
    since         timestamptz NOT NULL
);
CREATE INDEX waitlist_wave_idx ON {schema}.waitlist (wave_id, since, mentee_id);
