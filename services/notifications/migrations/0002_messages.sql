-- Messages to people.
--
-- Learned from enrollment by the consumer (consumers/people.py): who may be
-- written to, in which language and time zone. Deleted when the person is
-- erased (GDPR): an erased person is never written to again.
CREATE TABLE {schema}.recipients (
    participant_id  uuid        PRIMARY KEY,
    organisation    text        NOT NULL,
    country         text        NOT NULL,
    email           text        NOT NULL,
    display_name    text        NOT NULL,
    languages       text[]      NOT NULL,  -- the profile's, in its order
    time_zone       text        NOT NULL,  -- IANA name
    sequence        integer     NOT NULL   -- the participant stream's version last applied
);

-- A session's time as its last event set it: a cancellation names none, and
-- its message and CANCEL invite say which meeting is off.
CREATE TABLE {schema}.meetings (
    session_id        uuid        PRIMARY KEY,
    starts_at         timestamptz NOT NULL,
    duration_minutes  integer     NOT NULL,
    sequence          integer     NOT NULL  -- the session stream's version last applied
);

-- Every message: its metadata for the delivery log, and its MIME body until
-- it is delivered (NULL afterwards: bodies are not kept). One message per
-- (source event, recipient, kind): a redelivered event queues nothing more.
CREATE TABLE {schema}.messages (
    row_id           bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    message_id       uuid        PRIMARY KEY,
    organisation     text        NOT NULL,
    country          text        NOT NULL,
    recipient_id     uuid        NOT NULL,
    kind             text        NOT NULL,
    language         text        NOT NULL,
    with_invite      boolean     NOT NULL,
    source_event_id  text        NOT NULL,
    status           text        NOT NULL,  -- queued | delivered | failed | withdrawn
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,  -- wall-clock time of the next try
    last_error       text,
    body             bytea,
    queued_at        timestamptz NOT NULL,  -- platform time
    finished_at      timestamptz,
    UNIQUE (source_event_id, recipient_id, kind)
);
CREATE INDEX messages_due_idx ON {schema}.messages (next_attempt_at) WHERE status = 'queued';
CREATE INDEX messages_log_idx ON {schema}.messages (organisation, row_id);
CREATE INDEX messages_recipient_idx ON {schema}.messages (recipient_id);

-- Work due at a time of the platform clock (the 24 h notice before a
-- session, a survey's overdue reminders). Workers of every instance take due
-- rows with FOR UPDATE SKIP LOCKED: each job runs once per platform.
CREATE TABLE {schema}.due_jobs (
    job_id        text        PRIMARY KEY,
    organisation  text        NOT NULL,
    kind          text        NOT NULL,
    subject_id    uuid        NOT NULL,  -- the session or assignment it is about
    due_at        timestamptz NOT NULL,
    payload       jsonb       NOT NULL,
    done_at       timestamptz
);
CREATE INDEX due_jobs_due_idx ON {schema}.due_jobs (due_at) WHERE done_at IS NULL;
CREATE INDEX due_jobs_subject_idx ON {schema}.due_jobs (subject_id);
