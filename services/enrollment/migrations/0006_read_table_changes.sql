-- The tables whose reads the HTTP workers hold (the participants list, with
-- the wave it is filtered on: services/enrollment/entrypoints/api.py) tell
-- them of every change made elsewhere (libs/eventstore/migrations/0008).
CREATE TRIGGER read_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {schema}.programmes
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.read_table_changed();
CREATE TRIGGER read_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {schema}.waves
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.read_table_changed();
CREATE TRIGGER read_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {schema}.participants
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.read_table_changed();
