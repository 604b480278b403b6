-- The table whose reads the HTTP workers hold (a pair, by id:
-- services/matching/entrypoints/api.py) tells them of every change made
-- elsewhere (libs/eventstore/migrations/0008).
CREATE TRIGGER read_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {schema}.pairs
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.read_table_changed();
