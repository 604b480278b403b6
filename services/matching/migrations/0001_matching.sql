-- Matching's tables. {schema} is the service's schema.
--
-- The candidate pool (programmes, waves, candidates) is matching's own copy of
-- enrollment events, written by the CandidatePool projection through Kafka.
-- Events of different aggregates arrive on different partitions, in any
-- order: so no foreign keys here, and commands join at read time.
--
-- pairs, runs and exclusions are written from matching's own events, in the
-- transaction that appends them (adapters/read_tables.py). Each list table has
-- a row_id: the keyset of cursor pagination.

CREATE TABLE {schema}.programmes (
    programme_id  uuid    PRIMARY KEY,
    organisation  text    NOT NULL,
    mode          text,             -- NULL until ProgrammeCreated arrives
    settings      jsonb   NOT NULL,
    version       integer NOT NULL
);

CREATE TABLE {schema}.waves (
    wave_id       uuid    PRIMARY KEY,
    programme_id  uuid    NOT NULL,
    organisation  text    NOT NULL,
    country       text    NOT NULL,
    region        text    NOT NULL,
    committee     text    NOT NULL,
    status        text    NOT NULL,
    starts_on     date    NOT NULL,
    version       integer NOT NULL
);

CREATE TABLE {schema}.candidates (
    participant_id  uuid    PRIMARY KEY,
    organisation    text    NOT NULL,
    programme_id    uuid    NOT NULL,
    wave_id         uuid    NOT NULL,
    country         text    NOT NULL,
    role            text    NOT NULL,
    withdrawn       boolean NOT NULL DEFAULT false,
    qualified       boolean NOT NULL DEFAULT false,
    profile         jsonb   NOT NULL,
    employee_ref    text    NOT NULL,
    manager_ref     text,
    version         integer NOT NULL,
    -- the enrollment rule: an enrolled mentee wanting a theme, an enrolled qualified mentor
    matchable       boolean GENERATED ALWAYS AS (
        NOT withdrawn AND CASE role WHEN 'mentor' THEN qualified
                                    ELSE jsonb_array_length(profile -> 'themes_wanted') > 0 END
    ) STORED
);
CREATE INDEX candidates_wave_idx ON {schema}.candidates (wave_id, role);

CREATE TABLE {schema}.pairs (
    row_id          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    pair_id         uuid        PRIMARY KEY,
    organisation    text        NOT NULL,
    programme_id    uuid        NOT NULL,
    wave_id         uuid        NOT NULL,  -- the mentee's: the pair's home
    country         text        NOT NULL,  -- the mentee's
    mentee_id       uuid        NOT NULL,
    mentor_id       uuid        NOT NULL,
    status          text        NOT NULL,
    version         integer     NOT NULL,
    doc             jsonb       NOT NULL
);
CREATE INDEX pairs_organisation_idx ON {schema}.pairs (organisation, row_id);
CREATE INDEX pairs_mentee_idx ON {schema}.pairs (mentee_id);
CREATE INDEX pairs_mentor_idx ON {schema}.pairs (mentor_id);

CREATE TABLE {schema}.runs (
    row_id        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    run_id        uuid        PRIMARY KEY,
    organisation  text        NOT NULL,
    programme_id  uuid        NOT NULL,
    wave_ids      uuid[]      NOT NULL,
    countries     text[]      NOT NULL,
    doc           jsonb       NOT NULL
);
CREATE INDEX runs_organisation_idx ON {schema}.runs (organisation, row_id);

CREATE TABLE {schema}.exclusions (
    exclusion_id  uuid        PRIMARY KEY,
    organisation  text        NOT NULL,
    programme_id  uuid        NOT NULL,
    mentee_id     uuid        NOT NULL,
    mentor_id     uuid        NOT NULL,
    country       text        NOT NULL,
    doc           jsonb       NOT NULL
);
CREATE INDEX exclusions_mentee_idx ON {schema}.exclusions (mentee_id);
