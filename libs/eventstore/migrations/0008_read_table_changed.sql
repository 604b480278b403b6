-- What a read table's statement trigger runs (libs/api/held_reads.py): a
-- NOTIFY on `binome_read_tables` (payload: the schema), sent when the
-- transaction commits. Not from a connection that says its process
-- announces its writes itself (`binome.announces_changes`, the HTTP workers'
-- pools): PostgreSQL serialises the commits of transactions that NOTIFY, and
-- every worker would be woken by every write.
CREATE FUNCTION {schema}.read_table_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('binome.announces_changes', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_notify('binome_read_tables', TG_TABLE_SCHEMA);
    END IF;
    RETURN NULL;
END
$$;

-- A service's migration names the tables whose reads the HTTP workers hold:
-- `SELECT {schema}.tell_read_table_changes(ARRAY['a', 'b'])` puts the trigger
-- on each (every statement that writes, TRUNCATE included).
CREATE FUNCTION {schema}.tell_read_table_changes(tables text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        EXECUTE format(
            'CREATE TRIGGER read_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I.%I '
            'FOR EACH STATEMENT EXECUTE FUNCTION %I.read_table_changed()',
            '{schema}', t, '{schema}'
        );
    END LOOP;
END
$$;
