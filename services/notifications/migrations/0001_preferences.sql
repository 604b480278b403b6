-- The notifications service's tables. {schema} is the service's schema.
-- Files 0001-0009 hold messages to people; webhooks use 0010 and up.
--
-- A participant's choices (entrypoints/api.py, /v1/preferences/me): the
-- language of their messages (NULL: the first language of their enrolment
-- profile that Binome has templates for) and the non-essential kinds they
-- turned off.

CREATE TABLE {schema}.preferences (
    participant_id  uuid        PRIMARY KEY,
    organisation    text        NOT NULL,
    language        text,
    muted_kinds     text[]      NOT NULL DEFAULT '{}',
    updated_at      timestamptz NOT NULL
);
