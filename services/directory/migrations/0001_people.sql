-- The directory's read table, kept in the same transaction as the events it
-- comes from (services/directory/adapters/projector.py). {schema} is the
-- service's schema. One row per person ever provisioned; the columns are what
-- SCIM filters and sorts on, ``state`` the person's whole current state.

CREATE TABLE {schema}.people (
    row_id             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    person_id          uuid        PRIMARY KEY,
    organisation       text        NOT NULL,
    user_name          text,                  -- NULL once erased
    external_id        text,
    employee_number    text,
    display_name       text,
    given_name         text,
    family_name        text,
    title              text,
    email              text,                  -- the primary (else first) e-mail
    manager_id         text,                  -- the manager's SCIM id, as sent
    country            text,
    entity             text,
    job_level          integer,
    business_function  text,
    organization       text,
    division           text,
    department         text,
    cost_center        text,
    preferred_language text,
    locale             text,
    timezone           text,
    active             boolean     NOT NULL,  -- whether the person is active (state.active: as HR stated it)
    deleted            boolean     NOT NULL DEFAULT false,
    erased             boolean     NOT NULL DEFAULT false,
    version            integer     NOT NULL,
    created_at         timestamptz NOT NULL,
    last_modified      timestamptz NOT NULL,
    state              jsonb       NOT NULL
);
-- SCIM: userName is unique in the organisation, case-insensitively, among
-- the people still in the directory (a deleted one frees it).
CREATE UNIQUE INDEX people_unique_user_name
    ON {schema}.people (organisation, lower(user_name)) WHERE NOT deleted;
CREATE INDEX people_listing_idx ON {schema}.people (organisation, row_id) WHERE NOT deleted;
CREATE INDEX people_modified_idx ON {schema}.people (organisation, last_modified) WHERE NOT deleted;
CREATE INDEX people_external_id_idx ON {schema}.people (organisation, external_id) WHERE NOT deleted;
CREATE INDEX people_employee_number_idx ON {schema}.people (organisation, employee_number) WHERE NOT deleted;
CREATE INDEX people_manager_idx ON {schema}.people (organisation, manager_id) WHERE NOT deleted;
