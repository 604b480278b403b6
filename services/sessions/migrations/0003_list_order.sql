-- Lists page in an order of the read model's own content (service_layer/views.py),
-- not by row_id, which a rebuild renumbers.
CREATE INDEX sessions_organisation_order_idx ON {schema}.sessions (organisation, starts_at, session_id);
CREATE INDEX check_ins_organisation_order_idx ON {schema}.check_ins (organisation, check_in_id);
CREATE INDEX check_ins_pair_order_idx ON {schema}.check_ins (pair_id, check_in_id);
CREATE INDEX mentor_months_organisation_order_idx ON {schema}.mentor_months (organisation, month, mentor_id);
