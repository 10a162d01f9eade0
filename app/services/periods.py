"""The school's lesson periods (setting ``bookings.periods``): "P1 08:50-09:50, P2 09:50-10:50, ...".

Kept apart from the bookings service so the settings page can check a typed value without importing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time

from sqlalchemy.orm import Session

from app.services.settings import define_setting, get_setting

PERIODS = define_setting(
    "bookings.periods",
    "P1 08:50-09:50, P2 09:50-10:50, P3 11:10-12:10, P4 12:10-13:10, P5 14:10-15:10, P6 15:10-16:00",
    "Lesson periods for booking equipment",
    "Each period's name and its times, separated by commas, like P1 08:50-09:50, P2 09:50-10:50. "
    "Staff book equipment by these periods.",
)
_ONE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9 ]{0,11}?)\s+([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)$")
EXAMPLE = "like P1 08:50-09:50, P2 09:50-10:50"
MOST_PERIODS = 16


@dataclass(frozen=True)
class Period:
    label: str
    starts: time
    ends: time

    @property
    def text(self) -> str:
        return f"{self.label} {self.starts:%H:%M}-{self.ends:%H:%M}"


def parse_periods(text: str) -> list[Period]:
    """Read the setting's text; a ``ValueError`` says what is wrong in words a school office understands."""
    parts = [part.strip() for part in (text or "").replace(";", ",").split(",") if part.strip()]
    if not parts:
        raise ValueError(f"Enter at least one lesson period, {EXAMPLE}.")
    if len(parts) > MOST_PERIODS:
        raise ValueError(f"Enter at most {MOST_PERIODS} periods.")
    periods: list[Period] = []
    for part in parts:
        found = _ONE.match(part)
        if found is None:
            raise ValueError(f"“{part[:40]}” is not a period with its times; write each one {EXAMPLE}.")
        label, h1, m1, h2, m2 = found.groups()
        starts, ends = time(int(h1), int(m1)), time(int(h2), int(m2))
        if ends <= starts:
            raise ValueError(f"{label} must end after it starts.")
        if periods and starts < periods[-1].ends:
            raise ValueError(f"{label} starts before {periods[-1].label} ends; list the periods in order, without overlaps.")
        if any(p.label.upper() == label.upper() for p in periods):
            raise ValueError(f"{label} is named twice.")
        periods.append(Period(label, starts, ends))
    return periods


def normalised(text: str) -> str:
    """The setting as it is stored: each period written the same way."""
    return ", ".join(p.text for p in parse_periods(text))


def school_periods(session: Session) -> list[Period]:
    """The periods as set; a stored value that no longer reads (it is checked when saved) gives the default."""
    try:
        return parse_periods(str(get_setting(session, PERIODS.key) or ""))
    except ValueError:
        return parse_periods(PERIODS.default)
