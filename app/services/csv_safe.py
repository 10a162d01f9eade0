"""CSV that a spreadsheet cannot be tricked into running (formula injection), streamed a line at a time."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def guard_cell(value: object) -> str:
    """A spreadsheet treats a cell starting with = + - @ (or tab/CR) as a formula: prefix it with '."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """Yield CSV text line by line, every cell guarded, so an export of any size streams in flat memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(cells: Iterable[object]) -> str:
        writer.writerow([guard_cell(cell) for cell in cells])
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield "\ufeff" + line(header)  # the BOM lets Excel read UTF-8 names correctly
    for row in rows:
        yield line(row)
