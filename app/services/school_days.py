"""School days for bookings (issue 17): Monday to Friday, outside the school's holidays.

The holidays are a setting (``bookings.holidays``) the admin types on the settings page as date ranges
the British way, "21/12/2026-01/01/2027, 15/02/2027-19/02/2027"; a single day is one date. Kept apart
from the bookings service so the settings page can check a typed value without importing it.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from app.clock import format_date
from app.services.settings import define_setting, get_setting

HOLIDAYS = define_setting(
    "bookings.holidays",
    "",
    "School holidays (no bookings)",
    "Each holiday's first and last day, separated by commas, like 21/12/2026-01/01/2027, 15/02/2027-19/02/2027; "
    "a single day is one date. Equipment cannot be booked on these days or at weekends, and the next free slot "
    "offered when a booking clashes skips them.",
)
EXAMPLE = "like 21/12/2026-01/01/2027, 15/02/2027"
MOST_HOLIDAYS = 60
LONGEST_HOLIDAY = timedelta(days=120)
_RANGE = re.compile(r"^(\d{1,2}/\d{1,2}/\d{4})(?:\s*(?:-|to|\u2013)\s*(\d{1,2}/\d{1,2}/\d{4}))?$")
SCHOOL_WEEK = 5
LOOK_AHEAD = timedelta(days=400)

Holiday = tuple[date, date]


def _day(text: str) -> date:
    try:
        return datetime.strptime(text, "%d/%m/%Y").date()
    except ValueError:
        raise ValueError(f"{text} is not a date; write dates as DD/MM/YYYY, {EXAMPLE}.") from None


def parse_holidays(text: str) -> list[Holiday]:
    """Read the setting's text, in date order; a ``ValueError`` says what is wrong in plain words.
    Blank means no holidays."""
    parts = [part.strip() for part in (text or "").replace(";", ",").replace("\n", ",").split(",") if part.strip()]
    if len(parts) > MOST_HOLIDAYS:
        raise ValueError(f"Enter at most {MOST_HOLIDAYS} holidays.")
    holidays: list[Holiday] = []
    for part in parts:
        found = _RANGE.match(part)
        if found is None:
            raise ValueError(f"“{part[:40]}” is not a date or a range of dates; write DD/MM/YYYY-DD/MM/YYYY, {EXAMPLE}.")
        first = _day(found.group(1))
        last = _day(found.group(2)) if found.group(2) else first
        if last < first:
            raise ValueError(f"{part} ends before it starts; write the first day, then the last.")
        if last - first > LONGEST_HOLIDAY:
            raise ValueError(f"{part} is longer than {LONGEST_HOLIDAY.days} days; enter each holiday on its own.")
        holidays.append((first, last))
    return sorted(holidays)


def normalised(text: str) -> str:
    """The setting as stored: each range written DD/MM/YYYY-DD/MM/YYYY (one date for a single day), in order."""
    return ", ".join(
        f"{first:%d/%m/%Y}" if first == last else f"{first:%d/%m/%Y}-{last:%d/%m/%Y}" for first, last in parse_holidays(text)
    )


def school_holidays(session: Session) -> list[Holiday]:
    """The holidays as set; a stored value that no longer reads (it is checked when saved) gives none."""
    try:
        return parse_holidays(str(get_setting(session, HOLIDAYS.key) or ""))
    except ValueError:
        return []


def holiday_of(day: date, holidays: list[Holiday]) -> Holiday | None:
    return next(((first, last) for first, last in holidays if first <= day <= last), None)


def is_school_day(day: date, holidays: list[Holiday]) -> bool:
    return day.weekday() < SCHOOL_WEEK and holiday_of(day, holidays) is None


def school_days_from(day: date, count: int, holidays: list[Holiday]) -> list[date]:
    """The first ``count`` school days from ``day`` (itself included when it is one)."""
    days: list[date] = []
    current = day
    while len(days) < count and current <= day + LOOK_AHEAD:  # a year of holidays still ends
        if is_school_day(current, holidays):
            days.append(current)
        current += timedelta(days=1)
    return days


def not_a_school_day(day: date, holidays: list[Holiday]) -> str:
    """Why nothing can be booked on ``day``, in words: "Saturday 28/11/2026 is a weekend"; empty for a school day."""
    if day.weekday() >= SCHOOL_WEEK:
        return f"{day:%A} {format_date(day)} is a weekend; choose a school day."
    found = holiday_of(day, holidays)
    if found is None:
        return ""
    first, last = found
    span = format_date(first) if first == last else f"{format_date(first)} to {format_date(last)}"
    return f"{format_date(day)} is in a school holiday ({span}); choose a school day."
