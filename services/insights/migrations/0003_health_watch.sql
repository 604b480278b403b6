-- The daily evaluation of pair health (health/watch.py): what each pair's
-- status was at the last evaluation, so that only a change for the worse is
-- recorded (PairNeedsAttention), and the days already evaluated (once a day
-- per platform, whatever the number of instances or restarts).
CREATE TABLE {schema}.pair_health_watch (
    pair_id       uuid    PRIMARY KEY,
    status        text    NOT NULL,  -- healthy | at_risk | dormant | ended
    version       integer NOT NULL DEFAULT 0,  -- the version of the pair's stream in insights' store
    evaluated_on  date    NOT NULL
);

CREATE TABLE {schema}.health_evaluations (
    evaluated_on  date        PRIMARY KEY,
    evaluated_at  timestamptz NOT NULL,
    pairs         integer     NOT NULL,
    changes       integer     NOT NULL
);
