-- The table whose reads the HTTP workers hold (a pair, by id:
-- services/matching/entrypoints/api.py) tells them of every change made
-- elsewhere (libs/eventstore/migrations/0008).
SELECT {schema}.tell_read_table_changes(ARRAY['pairs']);
