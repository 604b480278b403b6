"""One shape for every service's entrypoints: they parse the request, call
the service layer (or the module holding the service's queries) and answer.
No SQL and no database call in ``services/<service>/entrypoints/``."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: A database call or a statement written inline.
DATABASE = re.compile(r"\.(fetch|fetchrow|fetchval|execute|executemany|copy_records_to_table)\(|\b(SELECT|INSERT|UPDATE|DELETE)\s")


def offences() -> list[str]:
    found = []
    for path in sorted(ROOT.glob("services/*/entrypoints/*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if DATABASE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_no_entrypoint_runs_sql() -> None:
    assert offences() == []


def test_the_pattern_sees_a_query() -> None:
    assert DATABASE.search('row = await db.fetchrow(f"SELECT 1")')
    assert DATABASE.search("await conn.execute(sql)")
    assert not DATABASE.search("await views.programme(db, s, who, programme_id)")
