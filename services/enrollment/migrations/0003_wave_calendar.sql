-- The day a wave's enrolment closes by itself (WaveOpened.enrolment_closes_on;
-- null: when the committee closes it). The wave calendar
-- (service_layer/calendar.py) finds the waves due by these dates.
ALTER TABLE {schema}.waves ADD COLUMN enrolment_closes_on date;
CREATE INDEX waves_calendar_idx ON {schema}.waves (status, ends_on) WHERE status <> 'ended';
