-- The key vault: data keys of participants (and of pairs), wrapped by their
-- region's master key. It lives beside the services' schemas but belongs to
-- none of them, like a KMS would: deleting a row here is what erases a person.
CREATE TABLE {schema}.data_keys (
    key_id      uuid PRIMARY KEY,
    owners      uuid[] NOT NULL,          -- the participants whose erasure shreds this key
    region      text NOT NULL,            -- which master key wraps it
    wrapped_key bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX data_keys_owners ON {schema}.data_keys USING gin (owners);

-- Who was erased, and when: an erased key id must never get a new key, or new
-- events about an erased person would be readable again.
CREATE TABLE {schema}.erased (
    participant_id uuid PRIMARY KEY,
    erased_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {schema}.shredded_keys (
    key_id      uuid PRIMARY KEY,
    shredded_at timestamptz NOT NULL DEFAULT now()
);
