-- The append (libs/eventstore/store.py), as one function so that a unique
-- violation is caught on the server: its EXCEPTION block is a subtransaction,
-- the savepoint a caller's transaction needs to stay usable after a conflict,
-- without the two round trips (SAVEPOINT, RELEASE) a client-side savepoint
-- costs around the statement.
--
-- It reads each stream's version, checks the expected ones, and inserts the
-- events (stream version stamped) and their outbox rows only if every check
-- holds. Two writers reading the same version both try to insert it: the
-- unique (stream_id, version) lets one win; the other's call returns no row
-- (its inserts undone), which the store reads as "taken". Otherwise one row
-- per stream: the version found and whether the checks held. ``channel``
-- (not null inside a caller's transaction) wakes the relays when it commits.
CREATE FUNCTION {schema}.append_events(
    stream_ids text[], expected_versions int[],
    event_ids uuid[], event_streams text[], nths int[], types text[], envelopes text[],
    topic_prefix text, channel text
) RETURNS TABLE (stream_id text, expected int, actual int, ok boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    found_streams text[];
    found_expected int[];
    found_actual int[];
    all_ok boolean;
BEGIN
    -- Into variables first: rows go out only once every insert is done, so
    -- a violation caught below leaves nothing half returned.
    WITH stream AS (
        SELECT x.stream_id, x.expected,
               coalesce((SELECT max(e.version) FROM {schema}.events e WHERE e.stream_id = x.stream_id), 0) AS actual
        FROM unnest(stream_ids, expected_versions) AS x(stream_id, expected)
    ), checked AS (
        SELECT coalesce(bool_and(expected IS NULL OR expected = actual), true) AS ok FROM stream
    ), new AS (
        INSERT INTO {schema}.events (event_id, stream_id, version, type, envelope)
        SELECT u.event_id, u.stream_id, st.actual + u.nth, u.type,
               jsonb_set(u.envelope::jsonb, '{streamversion}', to_jsonb(st.actual + u.nth))
        FROM unnest(event_ids, event_streams, nths, types, envelopes)
             WITH ORDINALITY AS u(event_id, stream_id, nth, type, envelope, n)
        JOIN stream st USING (stream_id)
        WHERE (SELECT ok FROM checked)
        ORDER BY u.n
        RETURNING position, type
    ), queued AS (
        INSERT INTO {schema}.outbox (position, topic)
        SELECT position, topic_prefix || 'binome.' || split_part(type, '.', 2) || '.events' FROM new
    ), woken AS (
        SELECT pg_notify(channel, '') WHERE channel IS NOT NULL AND (SELECT ok FROM checked)
    )
    SELECT array_agg(s.stream_id), array_agg(s.expected), array_agg(s.actual), (SELECT ok FROM checked)
    INTO found_streams, found_expected, found_actual, all_ok
    FROM stream s CROSS JOIN (SELECT count(*) FROM woken) AS relay_woken;
    RETURN QUERY SELECT f.stream_id, f.expected, f.actual, all_ok
                 FROM unnest(found_streams, found_expected, found_actual) AS f(stream_id, expected, actual);
EXCEPTION WHEN unique_violation THEN
    RETURN;  -- no row: a version or an event id was taken (the subtransaction is undone)
END
$$;
