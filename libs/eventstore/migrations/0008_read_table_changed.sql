-- What a read table's statement trigger runs (libs/api/held_reads.py): a
-- NOTIFY on `binome_read_tables` (payload: the schema), sent when the
-- transaction commits.
CREATE FUNCTION {schema}.read_table_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('binome_read_tables', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

-- A service's migration names the tables whose reads the HTTP workers hold:
-- `SELECT {schema}.tell_read_table_changes(ARRAY['a', 'b'])` puts the trigger
-- on each, for every statement that writes (TRUNCATE included), except from
-- a connection that says its process announces its writes itself
-- (`binome.announces_changes`: the HTTP workers' pools). PostgreSQL
-- serialises the commits of transactions that NOTIFY, and every worker
-- would be woken by every write; the condition is checked in the trigger's
-- WHEN, so those connections' statements do not even call the function.
CREATE FUNCTION {schema}.tell_read_table_changes(tables text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        EXECUTE format(
            'CREATE TRIGGER read_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I.%I '
            'FOR EACH STATEMENT WHEN (current_setting(''binome.announces_changes'', true) IS DISTINCT FROM ''on'') '
            'EXECUTE FUNCTION %I.read_table_changed()',
            '{schema}', t, '{schema}'
        );
    END LOOP;
END
$$;
