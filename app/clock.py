"""The one place Lanyard reads the time, so tests can move it without sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

DEFAULT_ZONE = ZoneInfo("Europe/London")

_source: Callable[[], datetime] | None = None
_zone_source: Callable[[], ZoneInfo] | None = None


def school_zone() -> ZoneInfo:
    """The school's time zone (a setting, Europe/London unless changed): school dates and times use it."""
    if _zone_source is not None:
        return _zone_source()
    return DEFAULT_ZONE


def set_zone_source(source: Callable[[], ZoneInfo] | None) -> None:
    """Where the school's time zone is read from (the app reads its setting); None means Europe/London."""
    global _zone_source  # noqa: PLW0603 (one process-wide setting, set by the app factory and tests)
    _zone_source = source


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    if _source is not None:
        return _source().astimezone(UTC)
    return datetime.now(UTC)


def set_source(source: Callable[[], datetime] | None) -> None:
    """Replace the clock (tests); None restores the system clock."""
    global _source  # noqa: PLW0603 (one process-wide clock, replaced by tests)
    _source = source


def as_utc(value: datetime) -> datetime:
    """Treat a naive datetime (SQLite hands those back) as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_local(value: datetime) -> datetime:
    return as_utc(value).astimezone(school_zone())


def local_today() -> date:
    return to_local(utcnow()).date()


def format_datetime(value: datetime | None) -> str:
    """25/11/2026 14:20 in the school's time zone."""
    if value is None:
        return ""
    return to_local(value).strftime("%d/%m/%Y %H:%M")


def format_date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = to_local(value).date()
    return value.strftime("%d/%m/%Y")


def format_time(value: datetime | None) -> str:
    if value is None:
        return ""
    return to_local(value).strftime("%H:%M")
