-- The sessions service's tables. {schema} is the service's schema.
--
-- Learned from other contexts by the consumer (adapters/pair_directory.py):
-- pairs (matching) and programme themes (enrollment).
-- Written in the transaction that appends this service's own events
-- (adapters/projector.py): sessions, check_ins, mentor_months, session_settings.
-- row_id is the keyset of cursor pagination.

CREATE TABLE {schema}.pairs (
    pair_id         uuid        PRIMARY KEY,
    organisation    text        NOT NULL,
    programme_id    uuid        NOT NULL,
    wave_id         uuid        NOT NULL,
    country         text        NOT NULL,  -- the pair's home: the mentee's
    mentee_id       uuid        NOT NULL,
    mentor_id       uuid        NOT NULL,
    mentor_country  text        NOT NULL,
    status          text        NOT NULL,  -- formed | dissolved | completed
    sequence        integer     NOT NULL,  -- the pair stream's version last applied
    updated_at      timestamptz NOT NULL
);
CREATE INDEX pairs_mentee_idx ON {schema}.pairs (mentee_id);
CREATE INDEX pairs_mentor_idx ON {schema}.pairs (mentor_id);

CREATE TABLE {schema}.programmes (
    programme_id  uuid    PRIMARY KEY,
    organisation  text    NOT NULL,
    themes        text[]  NOT NULL,
    sequence      integer NOT NULL
);

CREATE TABLE {schema}.session_settings (
    programme_id             uuid             PRIMARY KEY,
    organisation             text             NOT NULL,
    budget_share_percent     double precision NOT NULL,
    weekly_hours             double precision NOT NULL,
    monthly_budget_minutes   integer          NOT NULL,
    late_cancellation_hours  integer          NOT NULL,
    version                  integer          NOT NULL,
    updated_at               timestamptz      NOT NULL,
    updated_by               jsonb            NOT NULL
);

-- "doc" is the document the API returns; the other columns are what lists
-- filter on and what the overlap rule reads.
CREATE TABLE {schema}.sessions (
    row_id        bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    session_id    uuid        PRIMARY KEY,
    organisation  text        NOT NULL,
    pair_id       uuid        NOT NULL,
    programme_id  uuid        NOT NULL,
    wave_id       uuid        NOT NULL,
    country       text        NOT NULL,
    mentee_id     uuid        NOT NULL,
    mentor_id     uuid        NOT NULL,
    status        text        NOT NULL,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    doc           jsonb       NOT NULL
);
CREATE INDEX sessions_pair_idx ON {schema}.sessions (pair_id, starts_at, row_id);
CREATE INDEX sessions_mentee_idx ON {schema}.sessions (mentee_id, starts_at, row_id);
CREATE INDEX sessions_mentor_idx ON {schema}.sessions (mentor_id, starts_at, row_id);
CREATE INDEX sessions_organisation_idx ON {schema}.sessions (organisation, starts_at, row_id);

CREATE TABLE {schema}.check_ins (
    row_id        bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    check_in_id   uuid        PRIMARY KEY,
    organisation  text        NOT NULL,
    pair_id       uuid        NOT NULL,
    programme_id  uuid        NOT NULL,
    country       text        NOT NULL,
    mentee_id     uuid        NOT NULL,
    mentor_id     uuid        NOT NULL,
    member        text        NOT NULL,
    mood          integer     NOT NULL,
    doc           jsonb       NOT NULL
);
CREATE INDEX check_ins_pair_idx ON {schema}.check_ins (pair_id, row_id);
CREATE INDEX check_ins_organisation_idx ON {schema}.check_ins (organisation, row_id);

CREATE TABLE {schema}.mentor_months (
    row_id               bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    mentor_id            uuid        NOT NULL,
    month                date        NOT NULL,
    organisation         text        NOT NULL,
    programme_id         uuid        NOT NULL,
    country              text        NOT NULL,  -- the mentor's
    budget_minutes       integer     NOT NULL,
    total_minutes        integer     NOT NULL,
    session_minutes      integer     NOT NULL,
    preparation_minutes  integer     NOT NULL,
    entries              integer     NOT NULL,
    over_budget          boolean     NOT NULL,
    exceeded_at          timestamptz,
    version              integer     NOT NULL,
    updated_at           timestamptz NOT NULL,
    PRIMARY KEY (mentor_id, month)
);
CREATE INDEX mentor_months_organisation_idx ON {schema}.mentor_months (organisation, row_id);
