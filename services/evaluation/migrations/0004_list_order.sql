-- Lists page in an order of the read model's own content (service_layer/views.py),
-- not by row_id, which a rebuild renumbers.
CREATE INDEX assignments_organisation_order_idx ON {schema}.assignments (organisation, assignment_id);
CREATE INDEX assignments_participant_order_idx ON {schema}.assignments (participant_id, assignment_id);
