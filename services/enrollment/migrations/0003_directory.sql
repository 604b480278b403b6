-- The organisation's HR directory as enrollment needs it (binome.directory.events,
-- consumers/directory.py): who a provisioned person is, their profile and
-- manager, and whether they are still in the organisation. An enrolment may
-- name a person by employee reference (employee_number) and take their
-- profile from here. An erased person's row is deleted.
CREATE TABLE {schema}.directory_people (
    person_id        uuid        PRIMARY KEY,
    organisation     text        NOT NULL,
    employee_number  text,
    display_name     text,
    email            text,
    manager_id       uuid,
    profile          jsonb       NOT NULL,
    active           boolean     NOT NULL,
    deleted          boolean     NOT NULL DEFAULT false,
    version          integer     NOT NULL
);
CREATE INDEX directory_people_employee_idx ON {schema}.directory_people (organisation, employee_number);

-- The directory events whose effects on participants were taken (profile
-- updates, relocations, withdrawals). Not part of the read model: a rebuild
-- of directory_people keeps it, so that a replay never takes an effect twice
-- (nor records an old state of the person over a newer one).
CREATE TABLE {schema}.directory_effects (
    event_id  uuid        PRIMARY KEY,
    taken_at  timestamptz NOT NULL DEFAULT now()
);
