-- The committee digest of pairs needing attention.
--
-- Who hears for a committee: per (organisation, country), the addresses an
-- HR admin set (PUT /v1/committees/{country}/contacts), in one language and
-- time zone. Addresses are kept like participants' (recipients): in this
-- table only, never in an event, a log line or the delivery log; a message
-- body naming them is dropped once delivered.
CREATE TABLE {schema}.committee_contacts (
    organisation  text        NOT NULL,
    country       text        NOT NULL,
    addresses     text[]      NOT NULL,
    language      text        NOT NULL,
    time_zone     text        NOT NULL,  -- IANA name
    updated_at    timestamptz NOT NULL,  -- platform time
    updated_by    text        NOT NULL,  -- the HR admin's subject
    PRIMARY KEY (organisation, country)
);

-- Pairs that insights found worse (PairNeedsAttention), waiting for their
-- committee's digest; ``digest_job`` names the digest (due job) that listed
-- them (NULL: not yet listed). Ids only: names are read from recipients
-- when the digest is written.
CREATE TABLE {schema}.attention_pairs (
    pair_id       uuid        NOT NULL,
    evaluated_on  date        NOT NULL,
    organisation  text        NOT NULL,
    country       text        NOT NULL,
    mentee_id     uuid        NOT NULL,
    mentor_id     uuid        NOT NULL,
    status        text        NOT NULL,  -- at_risk | dormant
    reasons       text[]      NOT NULL,
    evaluated_at  timestamptz NOT NULL,
    digest_job    text,
    PRIMARY KEY (pair_id, evaluated_on)
);
CREATE INDEX attention_pairs_waiting_idx ON {schema}.attention_pairs (organisation, country) WHERE digest_job IS NULL;
