-- Lists page in an order of the read model's own content (service_layer/views.py),
-- not by row_id, which a rebuild renumbers.
CREATE INDEX pairs_organisation_order_idx ON {schema}.pairs (organisation, pair_id);
CREATE INDEX runs_organisation_order_idx ON {schema}.runs (organisation, run_id);
