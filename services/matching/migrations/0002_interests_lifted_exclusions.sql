-- Mentors' interest in mentees (MentorInterestExpressed), one row per mentor
-- and mentee; written with the events (read_tables.py), rebuilt from the log.
CREATE TABLE {schema}.interests (
    interest_id   uuid        PRIMARY KEY,
    organisation  text        NOT NULL,
    programme_id  uuid        NOT NULL,
    mentee_id     uuid        NOT NULL,
    mentor_id     uuid        NOT NULL,
    country       text        NOT NULL,  -- the mentee's
    doc           jsonb       NOT NULL
);
CREATE INDEX interests_mentee_idx ON {schema}.interests (mentee_id);
CREATE INDEX interests_mentor_idx ON {schema}.interests (mentor_id);

-- An exclusion lifted (ExclusionLifted) stays, marked: runs and choices skip
-- it, a participant's data export still shows it.
ALTER TABLE {schema}.exclusions ADD COLUMN lifted boolean NOT NULL DEFAULT false;
