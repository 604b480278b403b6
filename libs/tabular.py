"""Rows out of an uploaded file: CSV (as spreadsheets export it), XLSX or JSON.

CSV: UTF-8 (a BOM is fine), the first line names the columns, the delimiter
is whichever of ``,`` ``;`` or tab the header uses (spreadsheets in much of
Europe export ``;``). Inside a cell, lists are separated by ``|``
(``fr|en``) and a theme with its level is ``code:level``
(``data_ai:3|cybersecurity:2``). Empty cells are absent values. Lines count
as in a text editor (the header is line 1); a quoted cell spanning several
lines is reported at the line where its row starts.

A cell holds at most ``MAX_CELL_CHARS`` characters: a longer one makes its
row a bad row (named by line and column), never the file unreadable. The
csv module's own limit (128 KiB, process-wide) raised an error halfway
through the file instead, so it is lifted to the file's size here and ours
applies.

JSON: an array of objects, or ``{"participants": [...]}``; a row's "line" is
its position in the array, from 1.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import openpyxl
import orjson

from libs.api.problems import Problem, invalid

LIST_SEPARATOR = "|"
LEVEL_SEPARATOR = ":"
DELIMITERS = (",", ";", "\t")
#: Far above any text field's own limit (a motivation is at most a few
#: thousand characters), so only an abusive cell meets it.
MAX_CELL_CHARS = 16_384


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, Any]


@dataclass(frozen=True)
class RowError:
    """What is wrong with a row: the line, the column (or "row"), why."""

    line: int
    field: str
    message: str


@dataclass(frozen=True)
class Table:
    rows: list[Row] = field(default_factory=list)
    bad_rows: list[RowError] = field(default_factory=list)


class UnreadableFile(ValueError):
    """The file as a whole cannot be read (not a row's fault)."""

    def __init__(self, field: str, message: str, line: int = 1) -> None:
        super().__init__(message)
        self.field, self.message, self.line = field, message, line

    def problem(self) -> Problem:
        """The 422 naming what cannot be read. Its type is ``rule``: the body
        is the documented media type, but its content (columns, rows) is
        what no schema of a file states."""
        return invalid([{"line": self.line, "field": self.field, "message": self.message, "type": "rule"}],
                       "The file cannot be read.")


def read_csv(
    body: bytes, *, columns: Collection[str], list_columns: Collection[str] = (), level_columns: Collection[str] = ()
) -> Table:
    """Rows keyed by column name; ``list_columns`` split on ``|``,
    ``level_columns`` into ``{"theme": code, "level": level}`` items."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableFile("file", "The file is not UTF-8 text.") from None
    # Only ever raised, never lowered: a concurrent read keeps its room.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    first_line = text.split("\n", 1)[0]
    delimiter = max(DELIMITERS, key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    def records() -> Iterator[tuple[int, list[str]]]:
        line = 1  # where the next record starts
        for record in reader:
            yield line, record
            line = reader.line_num + 1

    return _table(records(), columns, list_columns, level_columns)


def read_xlsx(body: bytes, *, columns: Collection[str], list_columns: Collection[str] = ()) -> Table:
    """The first sheet of an XLSX workbook, read as :func:`read_csv` reads a
    file (its first row names the columns; a row's line is its row number).
    Numbers that are whole read as integers (``3``, not ``3.0``), dates in
    ISO 8601; formulas are not evaluated (their last computed value is read)."""
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(body), read_only=True, data_only=True)
        sheet = workbook.worksheets[0]
        rows = [[_cell_text(value) for value in row] for row in sheet.iter_rows(values_only=True)]
        workbook.close()
    except Exception:  # openpyxl raises zip, XML and key errors alike for a file that is no workbook
        raise UnreadableFile("file", "The file is not an XLSX workbook.") from None
    return _table(((number, row) for number, row in enumerate(rows, start=1)), columns, list_columns, ())


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _table(
    records: Iterator[tuple[int, list[str]]],
    columns: Collection[str],
    list_columns: Collection[str],
    level_columns: Collection[str],
) -> Table:
    """Rows of (line, cells) records, the first of them the header."""
    try:
        _, first = next(records)
    except StopIteration:
        raise UnreadableFile("file", "The file is empty.") from None
    header = [name.strip().lower() for name in first]
    while header and not header[-1]:  # spreadsheets leave empty columns after the last one
        header.pop()
    unknown = [name for name in header if name not in columns]
    if unknown:
        raise UnreadableFile(
            unknown[0], f"Unknown column(s): {', '.join(unknown)}. Known: {', '.join(sorted(columns))}."
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise UnreadableFile(repeated[0], f"Column(s) given twice: {', '.join(repeated)}.")

    table = Table()
    for start, record in records:
        if not any(cell.strip() for cell in record):
            continue  # blank lines are not rows
        if len(record) > len(header) and not any(cell.strip() for cell in record[len(header) :]):
            record = record[: len(header)]  # empty trailing cells, as spreadsheets write them
        if len(record) != len(header):
            table.bad_rows.append(RowError(start, "row", f"{len(record)} cells where the header has {len(header)}."))
            continue
        too_long = [name for name, cell in zip(header, record, strict=True) if len(cell) > MAX_CELL_CHARS]
        if too_long:
            message = f"A cell holds at most {MAX_CELL_CHARS} characters."
            table.bad_rows.extend(RowError(start, name, message) for name in too_long)
            continue
        values: dict[str, Any] = {}
        for name, cell in zip(header, record, strict=True):
            cell = cell.strip()
            if not cell:
                continue
            if name in level_columns:
                values[name] = [_with_level(item) for item in _split(cell)]
            elif name in list_columns:
                values[name] = _split(cell)
            else:
                values[name] = cell
        table.rows.append(Row(start, values))
    return table


def _split(cell: str) -> list[str]:
    return [item.strip() for item in cell.split(LIST_SEPARATOR) if item.strip()]


def _with_level(item: str) -> dict[str, str]:
    code, separator, level = item.partition(LEVEL_SEPARATOR)
    # A missing level stays missing: the row model reports "level: Field required".
    return {"theme": code.strip(), "level": level.strip()} if separator else {"theme": code.strip()}


def read_json(body: bytes) -> Table:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UnreadableFile("file", f"Not valid JSON: {exc}") from None
    if isinstance(document, dict) and set(document) == {"participants"}:
        document = document["participants"]
    if not isinstance(document, list):
        raise UnreadableFile("file", 'Expected an array of rows, or {"participants": [...]}.')
    table = Table()
    for position, item in enumerate(document, start=1):
        if isinstance(item, dict):
            table.rows.append(Row(position, item))
        else:
            table.bad_rows.append(RowError(position, "row", "Each row is a JSON object."))
    return table
