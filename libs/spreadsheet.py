"""Spreadsheet exports (CSV and XLSX), streamed, for every export of the platform.

An export is a list of typed ``Column``s and an async iterator of rows (one
value per column, in order). ``export_response`` turns them into a
download:

* **CSV** (UTF-8, a header row, ``\\r\\n``): written batch by batch as the
  rows arrive, never built whole in memory. Dates and instants are ISO 8601
  (instants in UTC), numbers as Python writes them, empty for null.
* **XLSX** (XlsxWriter in ``constant_memory`` mode: each row goes to disk
  when the next starts): a header row, numbers as numbers, booleans as
  booleans, dates and instants as Excel dates with a date format (instants
  in UTC, Excel has no time zones). The workbook is assembled in a
  temporary file, streamed in chunks, then deleted. XlsxWriter is
  synchronous, so batches of rows are written in a worker thread.

Every text cell is neutralised (``neutralise``): bidirectional control
characters are removed (they can make a cell read differently from what it
holds, "Trojan Source"), and a cell that would start with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return is prefixed with ``'`` so that no
spreadsheet program runs it as a formula (OWASP "CSV injection"). Numbers
are typed, not text, so a negative number stays a number.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import tempfile
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import xlsxwriter
from fastapi.responses import StreamingResponse

#: Rows written per batch (one CSV chunk, one thread hop for XLSX).
BATCH_ROWS = 500
#: Bytes per chunk when streaming a finished workbook.
CHUNK_BYTES = 64 * 1024

# LRM, RLM, ALM, the embeddings and overrides (LRE..RLO) and the isolates (LRI..PDI).
_BIDI = re.compile("[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

#: For an endpoint's ``responses=``: the two media types of a 200.
EXPORT_CONTENT = {200: {"content": {MEDIA_TYPES[f].split(";")[0]: {} for f in ExportFormat}}}


class ColumnType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    INSTANT = "instant"  # a timezone-aware datetime, exported in UTC


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType = ColumnType.TEXT


Rows = AsyncIterator[Sequence[Any]]


def neutralise(text: str) -> str:
    """A text cell that cannot run as a formula nor hide what it says."""
    text = _BIDI.sub("", text)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _csv_cell(column: Column, value: Any) -> Any:
    if value is None:
        return ""
    match column.type:
        case ColumnType.TEXT:
            return neutralise(str(value))
        case ColumnType.INSTANT:
            return _utc(value).isoformat().replace("+00:00", "Z")
        case ColumnType.DATE:
            return value.isoformat()
        case ColumnType.BOOLEAN:
            return "true" if value else "false"
        case _:
            return value


def _csv_text(lines: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(lines)
    return buffer.getvalue()


async def _batches(rows: Rows) -> AsyncIterator[list[Sequence[Any]]]:
    batch: list[Sequence[Any]] = []
    async for row in rows:
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


async def stream_csv(columns: Sequence[Column], rows: Rows) -> AsyncIterator[bytes]:
    yield _csv_text([[neutralise(c.name) for c in columns]]).encode()
    async for batch in _batches(rows):
        yield _csv_text([_csv_cell(c, v) for c, v in zip(columns, row, strict=True)] for row in batch).encode()


class _Sheet:
    """One constant-memory worksheet in a temporary file."""

    def __init__(self, columns: Sequence[Column], sheet_name: str) -> None:
        self.columns = columns
        handle, self.path = tempfile.mkstemp(suffix=".xlsx")
        os.close(handle)
        self.book = xlsxwriter.Workbook(
            self.path, {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
        )
        self.sheet = self.book.add_worksheet(sheet_name[:31])
        bold = self.book.add_format({"bold": True})
        self.formats = {
            ColumnType.DATE: self.book.add_format({"num_format": "yyyy-mm-dd"}),
            ColumnType.INSTANT: self.book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        }
        for i, column in enumerate(columns):
            self.sheet.write_string(0, i, neutralise(column.name), bold)
        self.sheet.freeze_panes(1, 0)
        self.next_row = 1

    def write(self, batch: Sequence[Sequence[Any]]) -> None:
        for row in batch:
            for i, (column, value) in enumerate(zip(self.columns, row, strict=True)):
                self._cell(self.next_row, i, column, value)
            self.next_row += 1

    def _cell(self, r: int, c: int, column: Column, value: Any) -> None:
        if value is None:
            return
        match column.type:
            case ColumnType.INTEGER | ColumnType.NUMBER:
                self.sheet.write_number(r, c, float(value) if column.type is ColumnType.NUMBER else int(value))
            case ColumnType.BOOLEAN:
                self.sheet.write_boolean(r, c, bool(value))
            case ColumnType.DATE:
                self.sheet.write_datetime(r, c, datetime(value.year, value.month, value.day), self.formats[column.type])
            case ColumnType.INSTANT:
                self.sheet.write_datetime(r, c, _utc(value).replace(tzinfo=None), self.formats[column.type])
            case _:
                self.sheet.write_string(r, c, neutralise(str(value)))

    def close(self) -> None:
        self.book.close()

    def discard(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


async def stream_xlsx(columns: Sequence[Column], rows: Rows, sheet_name: str) -> AsyncIterator[bytes]:
    sheet = await asyncio.to_thread(_Sheet, columns, sheet_name)
    try:
        async for batch in _batches(rows):
            await asyncio.to_thread(sheet.write, batch)
        await asyncio.to_thread(sheet.close)
        with open(sheet.path, "rb") as f:  # noqa: ASYNC230 - chunks of a local temporary file
            while chunk := f.read(CHUNK_BYTES):
                yield chunk
    finally:
        sheet.discard()


def export_response(fmt: ExportFormat, columns: Sequence[Column], rows: Rows, name: str) -> StreamingResponse:
    """A download of ``rows`` named ``<name>.<csv|xlsx>``, streamed."""
    body = stream_csv(columns, rows) if fmt is ExportFormat.CSV else stream_xlsx(columns, rows, name)
    filename = f"{name}.{fmt.value}"
    return StreamingResponse(
        body,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )


async def from_list(rows: Sequence[Sequence[Any]]) -> Rows:
    """Rows already in memory (small exports) as the async iterator exports take."""
    for row in rows:
        yield row
