-- Evaluation's read tables. {schema} is the service's schema.
--
-- ref_*: what evaluation copies from other contexts' events (the intake
-- projection, services/evaluation/service_layer/intake.py); emptied and
-- refilled by `binome replay evaluation evaluation-intake`.
CREATE TABLE {schema}.ref_programmes (
    programme_id  uuid   PRIMARY KEY,
    organisation  text   NOT NULL,
    languages     text[] NOT NULL
);

CREATE TABLE {schema}.ref_waves (
    wave_id       uuid PRIMARY KEY,
    programme_id  uuid NOT NULL,
    organisation  text NOT NULL,
    country       text NOT NULL,
    region        text NOT NULL
);

CREATE TABLE {schema}.ref_pairs (
    pair_id       uuid PRIMARY KEY,
    organisation  text NOT NULL,
    programme_id  uuid NOT NULL,
    wave_id       uuid NOT NULL,
    country       text NOT NULL,
    mentee_id     uuid NOT NULL,
    mentor_id     uuid NOT NULL,
    status        text NOT NULL  -- formed | completed | dissolved
);

-- A trigger that arrived before what it depends on (topics are not ordered
-- with each other): a pair formed before its programme was known, a session
-- held before its pair. Handled when the dependency arrives.
CREATE TABLE {schema}.deferred_triggers (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     uuid  NOT NULL UNIQUE,
    waiting_for  text  NOT NULL,  -- programme:<id> | pair:<id>
    envelope     jsonb NOT NULL
);
CREATE INDEX deferred_triggers_waiting_idx ON {schema}.deferred_triggers (waiting_for, seq);

-- Evaluation's own facts, written in the transaction that appends its events
-- (services/evaluation/adapters/projector.py); `binome replay evaluation
-- read-tables` rebuilds them from the log.
CREATE TABLE {schema}.templates (
    template_id   uuid        PRIMARY KEY,
    organisation  text        NOT NULL,
    programme_id  uuid        NOT NULL,
    kind          text        NOT NULL,
    version       integer     NOT NULL,
    updated_at    timestamptz NOT NULL,
    doc           jsonb       NOT NULL,  -- the current version
    UNIQUE (programme_id, kind)
);

CREATE TABLE {schema}.evaluation_settings (
    programme_id  uuid        PRIMARY KEY,
    organisation  text        NOT NULL,
    k_anonymity   integer     NOT NULL CHECK (k_anonymity >= 3),
    version       integer     NOT NULL,
    updated_at    timestamptz NOT NULL,
    updated_by    jsonb       NOT NULL
);

CREATE TABLE {schema}.assignments (
    row_id            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    assignment_id     uuid        PRIMARY KEY,
    organisation      text        NOT NULL,
    programme_id      uuid        NOT NULL,
    wave_id           uuid        NOT NULL,
    country           text        NOT NULL,
    pair_id           uuid        NOT NULL,
    participant_id    uuid        NOT NULL,
    kind              text        NOT NULL,
    phase             text        NOT NULL,
    status            text        NOT NULL,  -- open | answered | cancelled
    due_at            timestamptz NOT NULL,
    scale             jsonb       NOT NULL DEFAULT '{}',  -- question id -> 1..5, once answered
    actions_started   integer     NOT NULL DEFAULT 0,
    actions_planned   integer     NOT NULL DEFAULT 0,
    version           integer     NOT NULL,
    doc               jsonb       NOT NULL  -- the API document (free text only for its participant)
);
CREATE INDEX assignments_organisation_idx ON {schema}.assignments (organisation, row_id);
CREATE INDEX assignments_participant_idx ON {schema}.assignments (participant_id, row_id);
CREATE INDEX assignments_programme_idx ON {schema}.assignments (programme_id, kind, phase);
CREATE INDEX assignments_pair_idx ON {schema}.assignments (pair_id);
CREATE INDEX assignments_open_due_idx ON {schema}.assignments (due_at) WHERE status = 'open';
