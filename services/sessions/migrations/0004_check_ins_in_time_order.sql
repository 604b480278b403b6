-- Check-ins list in the order they were recorded (the event's time, then the
-- check-in id for ties): an order of the read model's own content, the same
-- after a rebuild, and the one people expect (0003 ordered by id alone).
ALTER TABLE {schema}.check_ins ADD COLUMN recorded_at timestamptz;
UPDATE {schema}.check_ins SET recorded_at = (doc->>'recorded_at')::timestamptz;
ALTER TABLE {schema}.check_ins ALTER COLUMN recorded_at SET NOT NULL;
DROP INDEX {schema}.check_ins_organisation_order_idx;
DROP INDEX {schema}.check_ins_pair_order_idx;
CREATE INDEX check_ins_organisation_order_idx ON {schema}.check_ins (organisation, recorded_at, check_in_id);
CREATE INDEX check_ins_pair_order_idx ON {schema}.check_ins (pair_id, recorded_at, check_in_id);
