-- Insights' read models ({schema} = the service's schema). Every table here is
-- written only by the projection (services/insights/projection/) and is a pure
-- function of the events it consumed: rows are keyed by the ids the events
-- carry, timestamps come from the events, never from the clock, so a rebuild
-- from the log yields the same rows whatever order the streams interleave in.
-- No foreign keys: events of different streams arrive in any order.
-- health_rules (0002) is the only table the API writes.

-- ---------------------------------------------------------------- enrollment
CREATE TABLE {schema}.programmes (
    programme_id  uuid PRIMARY KEY,
    organisation  text NOT NULL,
    name          text NOT NULL,
    mode          text NOT NULL
);

CREATE TABLE {schema}.waves (
    wave_id       uuid PRIMARY KEY,
    organisation  text NOT NULL,
    programme_id  uuid NOT NULL,
    name          text NOT NULL,
    region        text NOT NULL,
    country       text NOT NULL,
    starts_on     date NOT NULL,
    ends_on       date NOT NULL,
    target_pairs  integer NOT NULL,
    status        text NOT NULL
);
CREATE INDEX waves_programme_idx ON {schema}.waves (programme_id);

-- The matchable profile only: no name, e-mail or free text reaches insights.
CREATE TABLE {schema}.participants (
    participant_id     uuid PRIMARY KEY,
    organisation       text NOT NULL,
    programme_id       uuid NOT NULL,
    wave_id            uuid NOT NULL,
    country            text NOT NULL,
    role               text NOT NULL,
    entity             text NOT NULL,
    business_function  text NOT NULL,
    job_level          integer NOT NULL,
    tenure_years       integer NOT NULL,
    generation_band    text,
    learner_profile    text NOT NULL,
    sessions_per_month integer NOT NULL,
    qualified          boolean,
    enrolled_at        timestamptz NOT NULL,
    withdrawn_at       timestamptz
);
CREATE INDEX participants_programme_idx ON {schema}.participants (programme_id);

-- ---------------------------------------------------------------- matching
CREATE TABLE {schema}.pairs (
    pair_id             uuid PRIMARY KEY,
    organisation        text NOT NULL,
    programme_id        uuid NOT NULL,
    wave_id             uuid NOT NULL,      -- the mentee's wave: the pair's home
    country             text NOT NULL,
    mentee_id           uuid NOT NULL,
    mentor_id           uuid NOT NULL,
    mentor_wave_id      uuid NOT NULL,
    mentor_country      text NOT NULL,
    status              text NOT NULL,      -- proposed, declined, formed, completed, dissolved
    score               double precision,
    criteria            jsonb NOT NULL DEFAULT '{}',  -- criterion -> raw value in [0, 1]
    proposed_at         timestamptz,
    formed_at           timestamptz,
    ended_at            timestamptz,
    dissolution_reason  text
);
CREATE INDEX pairs_programme_idx ON {schema}.pairs (programme_id, country);
CREATE INDEX pairs_mentor_idx ON {schema}.pairs (mentor_id);

-- ---------------------------------------------------------------- sessions
CREATE TABLE {schema}.sessions (
    session_id      uuid PRIMARY KEY,
    pair_id         uuid NOT NULL,
    starts_at       timestamptz NOT NULL,
    status          text NOT NULL,          -- scheduled, held, cancelled, no_show
    held_at         timestamptz,
    actual_minutes  integer,
    late            boolean NOT NULL DEFAULT false,
    absent          text
);
CREATE INDEX sessions_pair_idx ON {schema}.sessions (pair_id);

CREATE TABLE {schema}.check_ins (
    check_in_id  uuid PRIMARY KEY,
    pair_id      uuid NOT NULL,
    member       text NOT NULL,
    mood         integer NOT NULL,
    recorded_at  timestamptz NOT NULL
);
CREATE INDEX check_ins_pair_idx ON {schema}.check_ins (pair_id);

-- A mentor's month: the budget and the highest total logged.
CREATE TABLE {schema}.mentor_months (
    mentor_id       uuid NOT NULL,
    month           date NOT NULL,
    budget_minutes  integer NOT NULL,
    total_minutes   integer NOT NULL,
    exceeded_at     timestamptz,
    PRIMARY KEY (mentor_id, month)
);

-- ---------------------------------------------------------------- evaluation
CREATE TABLE {schema}.evaluation_settings (
    programme_id  uuid PRIMARY KEY,
    k_anonymity   integer NOT NULL
);

CREATE TABLE {schema}.assignments (
    assignment_id   uuid PRIMARY KEY,
    programme_id    uuid NOT NULL,
    pair_id         uuid NOT NULL,
    participant_id  uuid NOT NULL,
    kind            text NOT NULL,
    phase           text NOT NULL,
    due_at          timestamptz NOT NULL,
    status          text NOT NULL,          -- open, answered, cancelled
    answered_at     timestamptz,
    score           double precision        -- mean of the scale answers (1..5)
);
CREATE INDEX assignments_pair_idx ON {schema}.assignments (pair_id);

-- ---------------------------------------------------------------- derived
-- One row per pair that has any activity: recomputed from the fact tables
-- above whenever one of its facts changes (projection/activity.py), so it is
-- a function of the facts, not of the order they came in.
CREATE TABLE {schema}.pair_activity (
    pair_id               uuid PRIMARY KEY,
    sessions_held         integer NOT NULL,
    sessions_cancelled    integer NOT NULL,
    late_cancellations    integer NOT NULL,
    no_shows              integer NOT NULL,
    minutes_held          integer NOT NULL,
    first_held_at         timestamptz,
    last_held_at          timestamptz,
    last_mood             integer,
    last_mood_at          timestamptz,
    feedback_scores       double precision[] NOT NULL,   -- session feedback, oldest first
    last_feedback_at      timestamptz,
    open_survey_due       timestamptz[] NOT NULL,        -- due dates of unanswered surveys
    surveys_due           integer NOT NULL,              -- assigned and not cancelled
    surveys_answered      integer NOT NULL,
    maturity_pre          double precision,
    maturity_post         double precision,
    budget_exceeded_month date,                          -- the mentor's latest month over budget
    budget_exceeded_at    timestamptz
);
