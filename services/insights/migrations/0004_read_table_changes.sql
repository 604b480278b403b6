-- The tables the rollout dashboard is computed from, whose answers the HTTP
-- workers hold (services/insights/entrypoints/api.py), tell them of every
-- change made elsewhere: the consumers' and a replay's
-- (libs/eventstore/migrations/0008).
SELECT {schema}.tell_read_table_changes(
    ARRAY['programmes', 'waves', 'participants', 'pairs', 'pair_activity', 'evaluation_settings']
);
