-- Every change of the read tables that the API lists from is heard by the
-- HTTP workers that hold pages of them (libs/api/held_pages.py): a NOTIFY on
-- `binome_read_tables` (payload: the schema), once per statement, sent when
-- the transaction commits. Not from a connection that says its process
-- announces its writes itself (`binome.announces_changes`, the HTTP workers'
-- pools): PostgreSQL serialises the commits of transactions that NOTIFY, and
-- the enrolments of a busy wave would queue behind each other.
CREATE FUNCTION {schema}.read_table_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('binome.announces_changes', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_notify('binome_read_tables', TG_TABLE_SCHEMA);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER read_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {schema}.programmes
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.read_table_changed();
CREATE TRIGGER read_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {schema}.waves
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.read_table_changed();
CREATE TRIGGER read_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {schema}.participants
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.read_table_changed();
