"""Reading import files: CSV as spreadsheets write it, and JSON."""

from __future__ import annotations

import pytest

from libs.tabular import MAX_CELL_CHARS, UnreadableFile, read_csv, read_json

COLUMNS = {"employee_ref", "role", "languages", "themes_wanted", "motivation"}


def csv(text: str) -> bytes:
    return text.encode()


def read(text: str):  # type: ignore[no-untyped-def]
    return read_csv(csv(text), columns=COLUMNS, list_columns={"languages"}, level_columns={"themes_wanted"})


def test_rows_carry_their_line_numbers_and_typed_cells() -> None:
    table = read(
        "employee_ref,role,languages,themes_wanted\nE1,mentee,fr|en,data_ai:3|e_commerce:1\n\nE2,mentor, en ,\n"
    )
    assert [(r.line, r.values) for r in table.rows] == [
        (
            2,
            {
                "employee_ref": "E1",
                "role": "mentee",
                "languages": ["fr", "en"],
                "themes_wanted": [{"theme": "data_ai", "level": "3"}, {"theme": "e_commerce", "level": "1"}],
            },
        ),
        (4, {"employee_ref": "E2", "role": "mentor", "languages": ["en"]}),  # blank line 3 skipped, empty cell absent
    ]
    assert table.bad_rows == []


def test_semicolon_files_a_bom_and_multi_line_cells() -> None:
    table = read('\ufeffEmployee_Ref;role;motivation\nE1;mentee;"line one\nline two"\nE2;mentor;short\n')
    assert [(r.line, r.values["employee_ref"]) for r in table.rows] == [(2, "E1"), (4, "E2")]
    assert table.rows[0].values["motivation"] == "line one\nline two"


def test_a_theme_without_level_stays_without_level() -> None:
    [row] = read("employee_ref,themes_wanted\nE1,data_ai\n").rows
    assert row.values["themes_wanted"] == [{"theme": "data_ai"}]


def test_rows_with_the_wrong_number_of_cells_are_bad_rows() -> None:
    table = read("employee_ref,role\nE1,mentee,extra\nE2,mentor\n")
    assert [(b.line, b.field) for b in table.bad_rows] == [(2, "row")]
    assert [r.line for r in table.rows] == [3]


def test_a_cell_over_the_limit_makes_a_bad_row_not_an_unreadable_file() -> None:
    # 140,000 characters: past the csv module's own 131,072 limit, which raised mid-file.
    huge = "x" * 140_000
    table = read(f'employee_ref,motivation\nE1,{huge}\nE2,"two\nlines {huge}"\nE3,{"y" * MAX_CELL_CHARS}\n')
    assert [(b.line, b.field) for b in table.bad_rows] == [(2, "motivation"), (3, "motivation")]
    assert [r.line for r in table.rows] == [5]


@pytest.mark.parametrize(
    ("text", "field"),
    [("", "file"), ("employee_ref,salary\nE1,1\n", "salary"), ("role,role\n", "role")],
)
def test_unreadable_files_name_the_problem(text: str, field: str) -> None:
    with pytest.raises(UnreadableFile) as exc:
        read(text)
    assert exc.value.field == field and exc.value.line == 1


def test_not_utf8_is_unreadable() -> None:
    with pytest.raises(UnreadableFile):
        read_csv("employee_ref\nJosé\n".encode("latin-1"), columns=COLUMNS)


def test_json_rows_are_numbered_from_one() -> None:
    table = read_json(b'[{"employee_ref": "E1"}, 3, {"employee_ref": "E3"}]')
    assert [(r.line, r.values) for r in table.rows] == [(1, {"employee_ref": "E1"}), (3, {"employee_ref": "E3"})]
    assert [(b.line, b.field) for b in table.bad_rows] == [(2, "row")]
    assert [r.line for r in read_json(b'{"participants": [{"a": 1}]}').rows] == [1]
    for bad in (b"{", b'{"rows": []}', b'"x"'):
        with pytest.raises(UnreadableFile):
            read_json(bad)
