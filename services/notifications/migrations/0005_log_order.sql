-- The delivery log pages by its own content, newest first: when a message was
-- queued, then its id for ties (a public key, the same whatever the table's row
-- numbers; 0002 paged by row_id).
CREATE INDEX messages_log_order_idx ON {schema}.messages (organisation, queued_at DESC, message_id DESC);
DROP INDEX {schema}.messages_log_idx;
