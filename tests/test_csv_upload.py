"""The CSV upload guards every import shares: the file, its reading, the file-level problems."""

from __future__ import annotations

import io

import pytest

from app.services.csv_upload import RowProblem, file_problem, read_table, refused_message, upload_text
from app.services.errors import ValidationFailed


class Upload(io.BytesIO):
    def __init__(self, data: bytes, filename: str = "people.csv") -> None:
        super().__init__(data)
        self.filename = filename


RULES = {
    "required": ("name", "email"),
    "allowed": ("name", "email", "roles"),
    "allowed_label": "name, email, roles",
    "max_rows": 3,
    "nobody": "Nobody in it.",
    "too_many": "At most 3.",
}


def test_the_upload_must_be_chosen_small_enough_and_utf8():
    assert upload_text(Upload("\ufeffname,email\n".encode())) == "\ufeffname,email\n".lstrip("\ufeff")
    with pytest.raises(ValidationFailed) as none:
        upload_text(Upload(b"", filename=""))
    assert none.value.field_errors == {"file": ["Choose a CSV file to import."]}
    with pytest.raises(ValidationFailed) as large:
        upload_text(Upload(b"x" * 2049), max_bytes=2048)
    assert large.value.field_errors["file"] == ["The file is larger than 2 KB; split it and import each part."]
    assert upload_text(Upload(b"x" * 2048), max_bytes=2048) == "x" * 2048
    with pytest.raises(ValidationFailed) as latin:
        upload_text(Upload("café".encode("latin-1")))
    assert "CSV UTF-8" in latin.value.message


def test_reading_keeps_one_row_past_the_limit_and_names_an_unreadable_row():
    table = read_table(" Name ,EMAIL\n a , b \nc,d\ne,f\ng,h\ni,j\n", max_rows=3)
    assert table.header == ["name", "email"] and table.rows[0] == {"name": "a", "email": "b"} and len(table.rows) == 4
    broken = read_table("name,email\na,b\nc," + "d" * 200_000 + "\n", max_rows=10)
    assert (
        broken.unreadable is not None
        and broken.unreadable.row == 3
        and "characters a CSV cell may hold" in str(broken.unreadable)
    )
    assert broken.rows == [{"name": "a", "email": "b"}]
    spaced = read_table("Staff Type\nx\n", max_rows=10, header_name=lambda n: (n or "").strip().lower().replace(" ", "_"))
    assert spaced.header == ["staff_type"]


def test_file_level_problems():
    assert file_problem(read_table("name,email\na,b\n", max_rows=3), **RULES) is None
    header = file_problem(read_table("name,colour\na,b\n", max_rows=3), **RULES)
    assert header == RowProblem(
        1, "", ("The header row must include email.", "Unknown columns: colour (allowed: name, email, roles).")
    )
    assert file_problem(read_table("name,email\n", max_rows=3), **RULES) == RowProblem(2, "", ("Nobody in it.",))
    assert file_problem(read_table("name,email\n" + "a,b\n" * 4, max_rows=3), **RULES) == RowProblem(5, "", ("At most 3.",))


def test_the_report_counts_rows_not_problems():
    problems = [
        RowProblem(2, "a@school.example", ("name: too long.",)),
        RowProblem(2, "", ("roles: unknown.",)),
        RowProblem(4, "", ("x",)),
    ]
    assert refused_message(problems) == "Nothing was imported: 2 rows need correcting."
    assert refused_message(problems[:1]) == "Nothing was imported: 1 row needs correcting."
    assert str(problems[0]) == "Row 2 (a@school.example): name: too long."
