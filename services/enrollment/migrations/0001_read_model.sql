-- Enrollment's read tables, kept in the same transaction as the events they
-- come from (services/enrollment/adapters/projector.py). {schema} is the
-- service's schema. Each table has a row_id: the keyset of cursor pagination.

CREATE TABLE {schema}.programmes (
    row_id        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    programme_id  uuid        PRIMARY KEY,
    organisation  text        NOT NULL,
    name          text        NOT NULL,
    mode          text        NOT NULL,
    settings      jsonb       NOT NULL,
    version       integer     NOT NULL,
    created_at    timestamptz NOT NULL,
    created_by    jsonb       NOT NULL,
    updated_at    timestamptz NOT NULL,
    updated_by    jsonb       NOT NULL
);
CREATE INDEX programmes_organisation_idx ON {schema}.programmes (organisation, row_id);

CREATE TABLE {schema}.waves (
    row_id        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    wave_id       uuid        PRIMARY KEY,
    programme_id  uuid        NOT NULL REFERENCES {schema}.programmes (programme_id),
    organisation  text        NOT NULL,
    name          text        NOT NULL,
    region        text        NOT NULL,
    country       text        NOT NULL,
    committee     text        NOT NULL,
    starts_on     date        NOT NULL,
    ends_on       date        NOT NULL,
    target_pairs  integer     NOT NULL,
    status        text        NOT NULL,
    version       integer     NOT NULL,
    opened_at     timestamptz NOT NULL,
    opened_by     jsonb       NOT NULL,
    updated_at    timestamptz NOT NULL,
    updated_by    jsonb       NOT NULL
);
CREATE INDEX waves_organisation_idx ON {schema}.waves (organisation, row_id);
CREATE INDEX waves_programme_idx ON {schema}.waves (programme_id, row_id);

-- One row per enrolment. "doc" is the document the API returns; the other
-- columns are what lists filter on.
CREATE TABLE {schema}.participants (
    row_id          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    participant_id  uuid        PRIMARY KEY,
    organisation    text        NOT NULL,
    programme_id    uuid        NOT NULL REFERENCES {schema}.programmes (programme_id),
    wave_id         uuid        NOT NULL REFERENCES {schema}.waves (wave_id),
    country         text        NOT NULL,
    role            text        NOT NULL,
    status          text        NOT NULL,
    employee_ref    text        NOT NULL,
    themes          text[]      NOT NULL,  -- codes wanted and offered
    needs_answered  boolean     NOT NULL,
    qualified       boolean,               -- mentors: NULL until assessed
    matchable       boolean     NOT NULL,
    version         integer     NOT NULL,
    enrolled_at     timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    doc             jsonb       NOT NULL
);
-- "One enrolment per person per programme": a withdrawn person may enrol again.
CREATE UNIQUE INDEX participants_one_enrolment_per_person
    ON {schema}.participants (programme_id, employee_ref) WHERE status <> 'withdrawn';
CREATE INDEX participants_organisation_idx ON {schema}.participants (organisation, row_id);
CREATE INDEX participants_wave_idx ON {schema}.participants (wave_id, row_id);
CREATE INDEX participants_themes_idx ON {schema}.participants USING gin (themes);
