"""Times: when a permission ends (end of lesson, an hour, the rest of the day, a chosen time)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy.orm import Session

from app.clock import school_zone, to_local
from app.services.errors import ValidationFailed
from app.services.permissions.common import _HH_MM, DAY_ENDS, LESSON_ENDS, Duration
from app.services.settings import get_setting

# Times ----------------------------------------------------------------------------------------------


def _local_at(day: date, hh_mm: str) -> datetime:
    hours, minutes = (int(part) for part in hh_mm.split(":"))
    return datetime.combine(day, time(hours, minutes), tzinfo=school_zone())


def _end_of_local_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59), tzinfo=school_zone())


def parse_until(text: str, now: datetime, field: str = "until") -> datetime:
    """Read a time as typed (``14:20``, today in school time) or an ISO 8601 date-time with its offset."""
    text = (text or "").strip()
    if not text:
        raise ValidationFailed("Choose a time.", {field: ["Enter a time, like 14:20."]})
    if match := _HH_MM.match(text):
        value = _local_at(to_local(now).date(), f"{match.group(1)}:{match.group(2)}")
    else:
        try:
            value = datetime.fromisoformat(text)
        except ValueError as error:
            raise ValidationFailed("That time is not clear.", {field: ["Enter a time like 14:20."]}) from error
        if value.tzinfo is None:
            value = value.replace(tzinfo=school_zone())
    if value <= now:
        raise ValidationFailed("That time has passed.", {field: ["That time has already passed; choose a later time."]})
    return value


def end_time_for(session: Session, duration: str, now: datetime, until: str = "") -> datetime:
    """When a permission asked for with ``duration`` ends.

    End of lesson is the next lesson end in the school-day timetable (setting ``permissions.lesson_ends``);
    after the last lesson it is one hour. Rest of the day runs to ``permissions.day_ends`` (18:00), or
    to 23:59 when that has passed.
    """
    local_now = to_local(now)
    today = local_now.date()
    if duration == Duration.ONE_HOUR.value:
        return now + timedelta(hours=1)
    if duration == Duration.END_OF_LESSON.value:
        for hh_mm in sorted(get_setting(session, LESSON_ENDS.key)):
            boundary = _local_at(today, hh_mm)
            if boundary > local_now:
                return boundary
        return now + timedelta(hours=1)
    if duration == Duration.REST_OF_DAY.value:
        day_end = _local_at(today, get_setting(session, DAY_ENDS.key))
        return day_end if day_end > local_now else _end_of_local_day(today)
    if duration == Duration.UNTIL.value:
        value = parse_until(until, now)
        if to_local(value).date() != today:
            raise ValidationFailed("Permission lasts a day at most.", {"until": ["Choose a time later today."]})
        return value
    raise ValidationFailed("Choose how long.", {"duration": ["Choose how long you need it."]})
