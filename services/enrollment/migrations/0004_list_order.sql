-- Lists page in an order of the read model's own content (service_layer/views.py),
-- not by row_id, which a rebuild renumbers.
CREATE INDEX programmes_organisation_order_idx ON {schema}.programmes (organisation, programme_id);
CREATE INDEX waves_organisation_order_idx ON {schema}.waves (organisation, wave_id);
CREATE INDEX participants_organisation_order_idx ON {schema}.participants (organisation, participant_id);
CREATE INDEX participants_wave_order_idx ON {schema}.participants (wave_id, participant_id);
