"""One way to take a CSV file in (the asset import, the staff import): its guards in one place.

- the upload: a file must be chosen, at most ``max_bytes``, UTF-8 text (a byte-order mark is dropped);
- reading: at most ``max_rows`` rows are kept (one more is read, to say the file is too long); a row the
  csv module cannot read (a cell over its field limit, a NUL byte, broken quotes) stops the reading and
  is named, counting the header as row 1;
- the file as a whole: the header must hold the required columns and no unknown ones, and there must be
  rows, and not too many. Each import then checks its own rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.services.errors import ValidationFailed

NOT_CHOSEN = "Choose a CSV file to import."
NOT_TEXT = "Save the file as CSV UTF-8 and try again; this one is not readable text."


@dataclass(frozen=True)
class RowProblem:
    """What is wrong with one row: ``row`` counts the header as line 1; ``label`` names the row (a tag, an email)."""

    row: int
    label: str
    messages: tuple[str, ...]

    def __str__(self) -> str:
        name = f"Row {self.row}" + (f" ({self.label})" if self.label else "")
        return f"{name}: {' '.join(self.messages)}"


@dataclass(frozen=True)
class CsvTable:
    header: list[str]
    rows: list[dict[str, str]]
    unreadable: RowProblem | None = None


def upload_text(upload: Any, max_bytes: int | None = None) -> str:
    """The text of an uploaded CSV file, or ValidationFailed on the ``file`` field (none, too large, not UTF-8)."""
    if not upload or not getattr(upload, "filename", ""):
        raise ValidationFailed(NOT_CHOSEN, {"file": [NOT_CHOSEN]})
    raw = upload.read() if max_bytes is None else upload.read(max_bytes + 1)
    upload.close()
    if max_bytes is not None and len(raw) > max_bytes:
        message = f"The file is larger than {max_bytes // 1024} KB; split it and import each part."
        raise ValidationFailed(message, {"file": [message]})
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationFailed(NOT_TEXT, {"file": [NOT_TEXT]}) from error


def _plain_header(name: str | None) -> str:
    return (name or "").strip().lower()


def unreadable_message(error: csv.Error) -> str:
    if "field larger than field limit" in str(error):
        return f"A cell is longer than the {csv.field_size_limit():,} characters a CSV cell may hold; nothing was read past it."
    return "This row cannot be read as CSV (it may hold a NUL byte or broken quotes); nothing was read past it."


def read_table(text: str, max_rows: int, header_name: Callable[[str | None], str] = _plain_header) -> CsvTable:
    """The header (each name through ``header_name``), the rows (cells stripped), and the row that could not be read."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header: list[str] | None = None
    rows: list[dict[str, str]] = []
    try:
        header = [header_name(name) for name in (reader.fieldnames or [])]
        reader.fieldnames = header
        for row in reader:
            rows.append({key: (value or "").strip() if isinstance(value, str) else "" for key, value in row.items() if key})
            if len(rows) > max_rows:
                break
    except csv.Error as error:
        # The header is row 1 and the rows read so far follow it, so the unreadable one is the next.
        where = 1 if header is None else len(rows) + 2
        return CsvTable(header or [], rows, RowProblem(where, "", (unreadable_message(error),)))
    return CsvTable(header, rows)


def file_problem(
    table: CsvTable,
    *,
    required: Sequence[str],
    allowed: Sequence[str],
    allowed_label: str,
    max_rows: int,
    nobody: str,
    too_many: str,
) -> RowProblem | None:
    """What refuses the file as a whole, if anything: unreadable, a bad header, no rows, too many rows."""
    if table.unreadable is not None:
        return table.unreadable
    missing = [name for name in required if name not in table.header]
    unknown = [name for name in table.header if name and name not in allowed]
    if missing or unknown:
        messages = []
        if missing:
            messages.append(f"The header row must include {', '.join(missing)}.")
        if unknown:
            messages.append(f"Unknown columns: {', '.join(name[:40] for name in unknown[:10])} (allowed: {allowed_label}).")
        return RowProblem(1, "", tuple(messages))
    if not table.rows:
        return RowProblem(2, "", (nobody,))
    if len(table.rows) > max_rows:
        return RowProblem(max_rows + 2, "", (too_many,))
    return None


def refused_message(problems: Sequence[RowProblem]) -> str:
    count = len({problem.row for problem in problems})
    return f"Nothing was imported: {count} row{'s' if count != 1 else ''} need{'s' if count == 1 else ''} correcting."
