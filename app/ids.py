"""Ids that people and programs send us, checked in one place against the database's integer range.

Every id column is an ``integer``: 32-bit on PostgreSQL, 64-bit on SQLite. The smaller range fits
both, so an id in a URL, a JSON body or a form field is a whole number from 1 to 2**31 - 1. Anything
larger is not an id of ours: it is simply not found (URLs) or refused by name (bodies and forms),
never handed to the database, where it would overflow and answer 500.
"""

from __future__ import annotations

MAX_ID = 2**31 - 1


def is_id(value: object) -> bool:
    """True for a JSON/Python whole number (not a bool) that can be one of our ids."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def form_id(value: object) -> int:
    """WTForms ``coerce`` for an id chosen in a form; 0 stands for "none chosen".

    Raises ValueError (which WTForms turns into a field error) for anything else, huge numbers included.
    """
    if isinstance(value, bool):
        raise ValueError("Not a valid choice.")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 10:
            raise ValueError("Not a valid choice.")
        number = int(text)
    if not 0 <= number <= MAX_ID:
        raise ValueError("Not a valid choice.")
    return number
