"""Ids that people and programs send us, checked in one place against the database's integer range.

Every id column is an ``integer``: 32-bit on PostgreSQL, 64-bit on SQLite. The smaller range fits
both, so an id in a URL, a JSON body or a form field is a whole number from 1 to 2**31 - 1. Anything
larger is not an id of ours: it is simply not found (URLs) or refused by name (bodies and forms),
never handed to the database, where it would overflow and answer 500.
"""

from __future__ import annotations

MAX_ID = 2**31 - 1


def _whole_numbers_up_to(limit: int) -> str:
    """A regular expression for the whole numbers 1 to ``limit`` (leading zeros allowed), and nothing else.

    Written digit by digit from the limit: every shorter number, then for each position of the limit a
    smaller digit there followed by any digits, then the limit itself.
    """
    digits = str(limit)
    size = len(digits)
    branches = [rf"[1-9][0-9]{{0,{size - 2}}}"] if size > 1 else []
    for position, digit in enumerate(digits):
        lowest = 1 if position == 0 else 0
        if int(digit) > lowest:
            rest = size - position - 1
            branches.append(f"{digits[:position]}[{lowest}-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    branches.append(digits)
    return "0*(?:" + "|".join(branches) + ")"


# The URL converter's pattern: an id out of range matches no route at all, so every method answers 404
# (a rule matched by its path and refused only by its converter would answer 405 to the other methods).
URL_ID_PATTERN = _whole_numbers_up_to(MAX_ID)


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
