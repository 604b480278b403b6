-- A participant's document as the API reads it, converted to text once, when
-- written, and rows kept whole (not compressed). A page of 50 read each
-- document compressed by TOAST (a row of a participant passes the 2 kB
-- at which PostgreSQL compresses), decompressed it and converted the jsonb
-- to text on every read: 0.8 ms of the server's time a page here, against
-- 0.1 now. Lists are read far more often than their documents change; a row
-- is about 3.5 kB whole, a few MB for a programme of thousands. `doc` stays
-- for the queries that look inside a document.
ALTER TABLE {schema}.participants SET (toast_tuple_target = 8160);
ALTER TABLE {schema}.participants ADD COLUMN doc_text text GENERATED ALWAYS AS (doc::text) STORED;
-- Rows written before keep their compressed document until it changes; a
-- new value of the same document is stored whole.
UPDATE {schema}.participants SET doc = doc || '{}'::jsonb;
