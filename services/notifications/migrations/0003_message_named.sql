-- Whom a message names besides its recipient (the other member of the pair):
-- an erasure withdraws the waiting messages that name the erased person too.
ALTER TABLE {schema}.messages ADD COLUMN named uuid[] NOT NULL DEFAULT '{}';
CREATE INDEX messages_named_idx ON {schema}.messages USING gin (named) WHERE status = 'queued';
