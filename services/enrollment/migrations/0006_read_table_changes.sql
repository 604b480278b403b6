-- The tables whose reads the HTTP workers hold (the participants list, with
-- the wave it is filtered on: services/enrollment/entrypoints/api.py) tell
-- them of every change made elsewhere (libs/eventstore/migrations/0008).
SELECT {schema}.tell_read_table_changes(ARRAY['programmes', 'waves', 'participants']);
