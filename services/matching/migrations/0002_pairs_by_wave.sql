-- The end of a wave completes the pairs whose home it is (lifecycle.after_wave_ended).
CREATE INDEX pairs_wave_idx ON {schema}.pairs (wave_id, status);
