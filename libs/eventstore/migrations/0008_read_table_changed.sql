-- What a read table's statement trigger runs (a service's migration puts
-- the triggers on the tables whose reads the HTTP workers hold:
-- libs/api/held_reads.py): a NOTIFY on `binome_read_tables` (payload: the
-- schema), sent when the transaction commits. Not from a connection that
-- says its process announces its writes itself (`binome.announces_changes`,
-- the HTTP workers' pools): PostgreSQL serialises the commits of
-- transactions that NOTIFY, and every worker would be woken by every write.
CREATE FUNCTION {schema}.read_table_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('binome.announces_changes', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_notify('binome_read_tables', TG_TABLE_SCHEMA);
    END IF;
    RETURN NULL;
END
$$;
