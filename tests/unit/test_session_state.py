"""No code keeps session state on a pooled connection.

The platform's pools skip asyncpg's reset query (``libs/database.py``), so a
session-level lock, ``LISTEN``, ``SET`` or temporary table taken on a pooled
connection would leak to the next user. Only the outbox relay keeps session
state, on a connection of its own (or one it resets itself), and so do the
HTTP workers' listeners for changes of the read tables (libs/api/held_reads.py).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {
    Path("libs/messaging/relay.py"),  # its lock and LISTEN end with its own session
    Path("libs/gdpr/compaction.py"),  # VACUUM's lock_timeout: it terminates the connection after
    Path("libs/api/held_reads.py"),  # its LISTEN, on a connection of its own, closed with it
}

SESSION_STATE = {
    "session advisory lock": re.compile(r"pg_(try_)?advisory_lock(_shared)?\s*\(", re.I),
    "LISTEN": re.compile(r"add_listener\s*\(|[\"']\s*LISTEN\s", re.I),
    "SET outside a transaction": re.compile(r"[\"']\s*SET\s+(?!LOCAL\b)(SESSION\s+)?\w+\s*(=|TO\b)", re.I),
    "session set_config": re.compile(r"set_config\s*\([^)]*,\s*false\s*\)", re.I),
    "temporary table": re.compile(r"CREATE\s+(GLOBAL\s+|LOCAL\s+)?TEMP(ORARY)?\s+TABLE", re.I),
    "held cursor": re.compile(r"CURSOR\s+WITH\s+HOLD", re.I),
}


def sources() -> list[Path]:
    return sorted(p for top in ("libs", "services") for p in (ROOT / top).rglob("*.py"))


def test_no_pooled_code_keeps_session_state() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {what}"
        for path in sources()
        if path.relative_to(ROOT) not in ALLOWED
        for what, pattern in SESSION_STATE.items()
        if pattern.search(path.read_text())
    ]
    assert found == []


def test_the_patterns_catch_what_they_name() -> None:
    """The guard could fail: each pattern matches its kind of statement."""
    samples = {
        "session advisory lock": "SELECT pg_try_advisory_lock(hashtext($1))",
        "LISTEN": "await conn.add_listener(channel, callback)",
        "SET outside a transaction": "await conn.execute('SET statement_timeout = 0')",
        "session set_config": "SELECT set_config('app.user', $1, false)",
        "temporary table": "CREATE TEMP TABLE scratch (n int)",
        "held cursor": "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
    }
    assert {what: bool(SESSION_STATE[what].search(text)) for what, text in samples.items()} == dict.fromkeys(
        samples, True
    )
    for harmless in ("SELECT pg_advisory_xact_lock(1)", "'UPDATE t SET a = 1'", "'SET LOCAL lock_timeout = 1'"):
        assert not any(p.search(harmless) for p in SESSION_STATE.values()), harmless
