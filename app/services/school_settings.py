"""The settings page's rules: how each setting is typed, read from a form and checked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from app.models import Role, User
from app.services.accounts import users_with_role
from app.services.errors import ValidationFailed
from app.services.settings import define_setting, defined_settings, get_setting, set_setting

SCHOOL_NAME = define_setting("school.name", "", "School name (shown on every page; blank uses the server's setting)")
TIME_ZONE = define_setting("school.time_zone", "Europe/London", "Time zone for school dates and times (like Europe/London)")
PUSH_CONTACT = define_setting(
    "push.contact", "", "Push contact: an email address push services may write to about this server (blank uses the server's setting)"
)
_HH_MM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_EMAIL = re.compile(r"^[^@\s:/]+@[^@\s:/]+\.[^@\s:/]+$")
# Shown on their own form (an upload), not as a text box.
_NOT_ON_THE_FORM = {"school.logo", "sso.required", "sso.create_accounts_domain"}  # SSO: on /admin/sso


@cache
def known_time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


@cache
def zone_named(name: str) -> ZoneInfo:
    """The zone for a stored name; an unknown name (a zone database that changed) falls back to Europe/London."""
    return ZoneInfo(name) if name in known_time_zones() else ZoneInfo(TIME_ZONE.default)


def school_zone(session) -> ZoneInfo:
    return zone_named(get_setting(session, TIME_ZONE.key) or TIME_ZONE.default)


def push_contact(session, fallback: str) -> str:
    """The ``sub`` claim for VAPID: the settings page's address as a mailto: link, else the server's."""
    contact = (get_setting(session, PUSH_CONTACT.key) or "").strip()
    return f"mailto:{contact}" if contact else fallback


@dataclass(frozen=True)
class SettingField:
    key: str
    label: str
    kind: str  # text, number, times, people
    value: object


def _kind(default: object, key: str) -> str:
    if key.endswith("delegate_ids"):
        return "people"
    if key == TIME_ZONE.key:
        return "zone"
    if key == PUSH_CONTACT.key:
        return "email"
    if isinstance(default, bool):
        return "text"
    if isinstance(default, int):
        return "number"
    if isinstance(default, list):
        return "times"
    return "text"


def setting_fields(session) -> list[SettingField]:
    return [
        SettingField(d.key, d.label, _kind(d.default, d.key), get_setting(session, d.key))
        for d in defined_settings()
        if d.key not in _NOT_ON_THE_FORM
    ]


def _parse(field: SettingField, raw: list[str], approvers: dict[int, User]) -> object:
    text = (raw[0] if raw else "").strip()
    if field.kind == "number":
        if not text.isdigit() or int(text) > 100_000:
            raise ValueError("Enter a whole number, 0 or more.")
        return int(text)
    if field.kind == "people":
        ids = [int(v) for v in raw if v.isdigit()]
        unknown = [i for i in ids if i not in approvers]
        if unknown:
            raise ValueError("Delegates must be approvers.")
        return sorted(set(ids))
    if field.kind == "times":
        times = [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]
        if not times or not all(_HH_MM.match(t) for t in times):
            raise ValueError("Enter times as HH:MM separated by commas, like 09:50, 10:45.")
        return sorted(f"{int(t.split(':')[0]):02d}:{t.split(':')[1]}" for t in times)
    if field.kind == "zone":
        if text not in known_time_zones():
            raise ValueError("Enter a time zone from the list, like Europe/London.")
        return text
    if field.kind == "email":
        address = text.removeprefix("mailto:")
        if address and (len(address) > 200 or not _EMAIL.match(address)):
            raise ValueError("Enter an email address, like office@school.sch.uk, or leave it blank.")
        return address
    if field.key.endswith("_ends") and not _HH_MM.match(text):
        raise ValueError("Enter a time as HH:MM, like 18:00.")
    if len(text) > 200:
        raise ValueError("Use at most 200 characters.")
    return text


def save_settings(session, actor: User, form: dict[str, list[str]]) -> int:
    """Check every submitted setting first, then store the changed ones (each change audited)."""
    approvers = {u.id: u for u in users_with_role(session, Role.APPROVER)}
    parsed: dict[str, object] = {}
    errors: dict[str, list[str]] = {}
    for field in setting_fields(session):
        if field.key not in form and field.kind != "people":
            continue
        try:
            parsed[field.key] = _parse(field, form.get(field.key, []), approvers)
        except ValueError as error:
            errors[field.key] = [str(error)]
    if errors:
        raise ValidationFailed("Some settings need correcting.", errors)
    changed = 0
    for key, value in parsed.items():
        if get_setting(session, key) != value:
            set_setting(session, actor, key, value)
            changed += 1
    return changed


def approver_choices(session) -> list[User]:
    return users_with_role(session, Role.APPROVER)
