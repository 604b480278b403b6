"""libs/spreadsheet.py: neutralised text, typed cells, CSV written batch by batch."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta, timezone

import openpyxl
import pytest

from libs import spreadsheet
from libs.spreadsheet import Column, ColumnType, from_list, neutralise, stream_csv, stream_xlsx

COLUMNS = (
    Column("name"), Column("count", ColumnType.INTEGER), Column("rate", ColumnType.NUMBER),
    Column("ok", ColumnType.BOOLEAN), Column("on", ColumnType.DATE), Column("at", ColumnType.INSTANT),
)
PARIS = timezone(timedelta(hours=2))
ROW = ("=1+2", -3, -0.5, True, date(2026, 5, 1), datetime(2026, 5, 1, 12, 0, tzinfo=PARIS))


@pytest.mark.parametrize("text", ["=SUM(A1)", "+1", "-1", "@cmd", "\tx", "\rx"])
def test_formula_starts_are_prefixed(text: str) -> None:
    assert neutralise(text) == "'" + text


def test_bidi_controls_are_removed_before_the_check() -> None:
    assert neutralise("\u202e=cmd") == "'=cmd"
    assert neutralise("a\u2066b\u2069c\u200f") == "abc"
    assert neutralise("plain - text") == "plain - text"


async def collect(stream) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def test_csv_streams_one_chunk_per_batch(monkeypatch) -> None:
    monkeypatch.setattr(spreadsheet, "BATCH_ROWS", 2)
    chunks = [c async for c in stream_csv(COLUMNS, from_list([ROW] * 5))]
    assert len(chunks) == 1 + 3  # the header, then batches of 2, 2, 1
    header, *rows = list(csv.reader(io.StringIO(b"".join(chunks).decode())))
    assert header == [c.name for c in COLUMNS]
    assert rows[0] == ["'=1+2", "-3", "-0.5", "true", "2026-05-01", "2026-05-01T10:00:00Z"]


async def test_xlsx_cells_are_typed() -> None:
    data = await collect(stream_xlsx(COLUMNS, from_list([ROW, ("x",) + (None,) * 5]), "sheet"))
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    header, first, empty = list(sheet.iter_rows(values_only=True))
    assert header == tuple(c.name for c in COLUMNS)
    assert first == ("'=1+2", -3, -0.5, True, datetime(2026, 5, 1), datetime(2026, 5, 1, 10, 0))
    assert empty == ("x",) + (None,) * 5  # null: an empty cell
    assert sheet["A2"].data_type == "s" and sheet["B2"].data_type == "n"
    assert sheet["E2"].is_date and sheet["F2"].is_date
    assert datetime(2026, 5, 1, 10, tzinfo=UTC) == ROW[5]  # the instant, in UTC
