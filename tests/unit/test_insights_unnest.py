"""The array form of a statement (services/insights/facts/unnest.py): which
shapes have one, and what it reads. That the rows written are the same is
shown against PostgreSQL in tests/integration/test_insights_unnest.py."""

from __future__ import annotations

from services.insights.facts.unnest import rewrite

TYPES = ("pg_catalog.uuid", "pg_catalog.timestamptz", "pg_catalog.int4")
SOURCE = "unnest($1::pg_catalog.uuid[], $2::pg_catalog.timestamptz[], $3::pg_catalog.int4[]) AS u(p1, p2, p3)"


def test_an_upsert_reads_its_rows_from_arrays_and_its_update_from_excluded():
    form = rewrite(
        """INSERT INTO s.sessions (session_id, starts_at, status, held_at, minutes) VALUES ($1, $2, 'held', $2, $3)
           ON CONFLICT (session_id) DO UPDATE SET held_at = $2, minutes = $3""",
        TYPES,
    )
    assert form is not None
    assert form.sql == (
        f"INSERT INTO s.sessions (session_id, starts_at, status, held_at, minutes) SELECT u.p1, u.p2, 'held', u.p2, u.p3 "
        f"FROM {SOURCE} ON CONFLICT (session_id) DO UPDATE SET held_at = EXCLUDED.starts_at, minutes = EXCLUDED.minutes"
    )
    assert form.keys == (0,)


def test_a_key_of_several_columns_names_each_parameter():
    form = rewrite(
        "INSERT INTO s.months (month, mentor_id, total) VALUES ($2, $1, $3) ON CONFLICT (mentor_id, month) DO NOTHING",
        TYPES,
    )
    assert form is not None and form.keys == (0, 1)


def test_an_update_and_a_delete_by_key_join_the_arrays():
    update = rewrite("UPDATE s.sessions SET starts_at = $2, minutes = $3 + 1 WHERE session_id = $1", TYPES)
    assert update is not None and update.keys == (0,)
    assert update.sql == f"UPDATE s.sessions SET starts_at = u.p2, minutes = u.p3 + 1 FROM {SOURCE} WHERE session_id = u.p1"
    delete = rewrite("DELETE FROM s.sessions WHERE session_id = $1", TYPES[:1])
    assert delete is not None
    assert delete.sql == "DELETE FROM s.sessions USING unnest($1::pg_catalog.uuid[]) AS u(p1) WHERE session_id = u.p1"


def test_other_shapes_keep_one_statement_per_row():
    for sql in (
        "SELECT pair_id FROM s.pairs WHERE mentor_id = $1",
        "UPDATE s.sessions SET starts_at = $2 WHERE session_id = $1 AND pair_id = $3",
        "INSERT INTO s.sessions (session_id, starts_at) VALUES ($1, now()) ON CONFLICT (session_id) DO NOTHING",
        "INSERT INTO s.sessions (session_id, starts_at) VALUES ($1, $2)",  # no conflict clause: not one of ours
        "INSERT INTO s.sessions (session_id, starts_at) VALUES ($1, 'x') ON CONFLICT (starts_at) DO NOTHING",
        "INSERT INTO s.sessions (session_id) VALUES ($1) ON CONFLICT (session_id) DO UPDATE SET minutes = $3",
        "DELETE FROM s.sessions WHERE starts_at < $1",
        "UPDATE s.pairs SET sessions = (SELECT count(*) FROM s.sessions WHERE pair_id = $1) WHERE pair_id = $1",
    ):
        assert rewrite(sql, TYPES) is None, sql
