"""One statement for many rows: a handler's statement rewritten to read its
parameters from arrays (``unnest``), so that a round of a batch
(``batching.py``) sends each distinct statement once with a column of values
per parameter instead of once per row (``executemany``): PostgreSQL plans and
executes it once, about half its CPU per row.

Only three shapes have an array form, the ones insights' handlers write:

* ``INSERT INTO t (c1, ...) VALUES (e1, ...) ON CONFLICT (k, ...) DO ...``
  -> ``INSERT INTO t (c1, ...) SELECT e1', ... FROM unnest(...) ON CONFLICT
  ...``; a parameter of the ``DO UPDATE`` clause becomes ``EXCLUDED.c`` of a
  column it fills as it is;
* ``UPDATE t SET ... WHERE k = $n`` -> ``UPDATE t SET ... FROM unnest(...)
  WHERE k = u.pn``;
* ``DELETE FROM t WHERE k = $n`` -> ``DELETE FROM t USING unnest(...) WHERE
  k = u.pn``.

Any other statement keeps ``executemany``, and so does a statement with a
subquery (it might read what the group's earlier rows wrote). So does a
group whose rows repeat a key: one statement cannot apply two rows to one
row in order as ``executemany`` does (``DO UPDATE`` refuses to touch a row
twice, ``UPDATE ... FROM`` would apply one of the two at random).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

_PARAM = re.compile(r"\$(\d+)\b")
_INSERT = re.compile(
    r"\s*INSERT INTO (?P<table>[\w.]+)\s*\((?P<columns>[^)]*)\)\s*VALUES\s*\((?P<values>[^()]*)\)"
    r"\s*(?P<conflict>ON CONFLICT\s*\((?P<keys>[^)]*)\)\s*DO\s+(?:NOTHING|UPDATE SET\s.*))",
    re.DOTALL,
)
_UPDATE = re.compile(r"\s*UPDATE (?P<table>[\w.]+) SET (?P<set>.*?)\s+WHERE (?P<key>\w+) = \$(?P<n>\d+)\s*", re.DOTALL)
_DELETE = re.compile(r"\s*DELETE FROM (?P<table>[\w.]+)\s+WHERE (?P<key>\w+) = \$(?P<n>\d+)\s*", re.DOTALL)
#: A subquery may read rows the earlier rows of the group wrote: row by row only.
_READS = re.compile(r"\bSELECT\b", re.IGNORECASE)


@dataclass(frozen=True)
class ArrayForm:
    sql: str  # the statement over ``unnest($1::t1[], $2::t2[], ...) AS u(p1, p2, ...)``
    keys: tuple[int, ...]  # 0-based indexes of the parameters that name the row written


def _columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",")]


def _to_alias(text: str) -> str:
    return _PARAM.sub(r"u.p\1", text)


def rewrite(sql: str, types: Sequence[str]) -> ArrayForm | None:
    """The array form of ``sql`` whose parameters have these (qualified) type
    names, or None when it has none."""
    count = len(types)
    if count == 0 or _READS.search(sql):
        return None
    source = (
        "unnest(" + ", ".join(f"${n + 1}::{t}[]" for n, t in enumerate(types)) + ") AS u("
        + ", ".join(f"p{n + 1}" for n in range(count)) + ")"
    )
    if m := _INSERT.fullmatch(sql):
        return _insert(m, source)
    if m := _UPDATE.fullmatch(sql):
        sql_ = f"UPDATE {m['table']} SET {_to_alias(m['set'])} FROM {source} WHERE {m['key']} = u.p{m['n']}"
        return ArrayForm(sql_, (int(m["n"]) - 1,))
    if m := _DELETE.fullmatch(sql):
        return ArrayForm(f"DELETE FROM {m['table']} USING {source} WHERE {m['key']} = u.p{m['n']}", (int(m["n"]) - 1,))
    return None


def _insert(m: re.Match[str], source: str) -> ArrayForm | None:
    columns, values = _columns(m["columns"]), _columns(m["values"])
    if len(columns) != len(values):
        return None
    filled = {}  # parameter -> a column it fills as it is
    for column, value in zip(columns, values):
        if p := re.fullmatch(r"\$(\d+)", value):
            filled.setdefault(p[1], column)
    keys = []
    for key in _columns(m["keys"]):
        value = values[columns.index(key)] if key in columns else ""
        if not (p := re.fullmatch(r"\$(\d+)", value)):
            return None  # a key not given as a parameter: cannot tell rows apart
        keys.append(int(p[1]) - 1)
    conflict = m["conflict"]
    if any(p not in filled for p in _PARAM.findall(conflict)):
        return None
    conflict = _PARAM.sub(lambda p: f"EXCLUDED.{filled[p[1]]}", conflict)
    sql = f"INSERT INTO {m['table']} ({', '.join(columns)}) SELECT {_to_alias(', '.join(values))} FROM {source} {conflict}"
    return ArrayForm(sql, tuple(keys))


_forms: dict[str, ArrayForm | None] = {}  # statement -> its array form, found once per process


async def array_form(conn: asyncpg.Connection, sql: str) -> ArrayForm | None:
    if sql not in _forms:
        parameters = (await conn.prepare(sql)).get_parameters()
        scalar = all(t.kind == "scalar" for t in parameters)
        _forms[sql] = rewrite(sql, [f"{t.schema}.{t.name}" for t in parameters]) if scalar else None
    return _forms[sql]


async def execute_rows(conn: asyncpg.Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Run ``sql`` once per row, in order: as one array statement when it has
    an array form and its rows name distinct rows, else with ``executemany``."""
    form = await array_form(conn, sql) if len(rows) > 1 else None
    if form is not None:
        columns = list(zip(*rows))  # a tuple of values per parameter
        keys = columns[form.keys[0]] if len(form.keys) == 1 else list(zip(*(columns[k] for k in form.keys)))
        if len(set(keys)) == len(rows):
            await conn.execute(form.sql, *columns)
            return
    await conn.executemany(sql, rows)
