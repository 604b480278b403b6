-- A spooled audit record's id (libs/audit/spool.py): a record shipped twice
-- (its process died between the commit and the deletion of its spool file)
-- is recorded once. NULL for records written directly.
ALTER TABLE {schema}.audit_log ADD COLUMN record_id text;
CREATE UNIQUE INDEX audit_log_record_id_idx ON {schema}.audit_log (record_id);
