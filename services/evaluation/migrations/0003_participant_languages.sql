-- The languages of each participant's profile (enrollment's ParticipantEnrolled
-- and ParticipantProfileUpdated), in the order given: a survey is shown in the
-- first of them the survey has, else in the programme's default language.
CREATE TABLE {schema}.ref_participants (
    participant_id  uuid   PRIMARY KEY,
    organisation    text   NOT NULL,
    languages       text[] NOT NULL
);
