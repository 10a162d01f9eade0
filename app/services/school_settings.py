"""The settings page's rules: how each setting is typed, read from a form and checked."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy.orm import Session

from app.models import Role, User
from app.services import school_days
from app.services.accounts import users_with_role
from app.services.errors import ValidationFailed
from app.services.periods import PERIODS, normalised
from app.services.settings import define_setting, defined_settings, get_setting, set_setting

SCHOOL_NAME = define_setting("school.name", "", "School name (shown on every page; blank uses the server's setting)")
TIME_ZONE = define_setting("school.time_zone", "Europe/London", "Time zone for school dates and times (like Europe/London)")
PUSH_CONTACT = define_setting(
    "push.contact",
    "",
    "Push contact: an email address push services may write to about this server (blank uses the server's setting)",
)
# Whom to tell about a concern (the "Report a concern" page); blank ones are left off that page.
HEAD_NAME = define_setting("safeguarding.head_name", "", "Headteacher's name")
HEAD_CONTACT = define_setting("safeguarding.head_contact", "", "How to reach the headteacher")
DSL_NAME = define_setting("safeguarding.dsl_name", "", "Designated safeguarding lead's name")
DSL_CONTACT = define_setting("safeguarding.dsl_contact", "", "How to reach the designated safeguarding lead")
DEPUTY_DSL_NAME = define_setting("safeguarding.deputy_dsl_name", "", "Deputy safeguarding lead's name (optional)")
# The borrower's terms for school equipment, accepted at each check-out and kept word for word with the loan.
LOAN_TERMS = define_setting(
    "loans.terms_text",
    "School equipment is for school use only, not for unauthorised personal use. "
    "Look after it, keep it secure and return it by the date due.",
    "Terms a borrower accepts for school equipment",
    "Shown to the borrower at each check-out (on the office screen or their own phone) and kept with the loan "
    "exactly as worded then. The due date is shown beside it.",
)
LOAN_TERMS_LONGEST = 1000
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


def school_zone(session: Session) -> ZoneInfo:
    return zone_named(get_setting(session, TIME_ZONE.key) or TIME_ZONE.default)


def push_contact(session: Session, fallback: str) -> str:
    """The ``sub`` claim for VAPID: the settings page's address as a mailto: link, else the server's."""
    contact = (get_setting(session, PUSH_CONTACT.key) or "").strip()
    return f"mailto:{contact}" if contact else fallback


@dataclass(frozen=True)
class SettingField:
    key: str
    label: str
    kind: str  # text, long (several lines), number, times, people
    value: object
    help: str = ""


@dataclass(frozen=True)
class SettingGroup:
    title: str
    fields: list[SettingField]


# The settings page in the order a school thinks of it; a setting not named here goes under "Other".
GROUPS = (
    ("School", ("school.name", "loans.default_days", "loans.terms_text")),
    (
        "Time and lessons",
        ("school.time_zone", "permissions.lesson_ends", "permissions.day_ends", "bookings.periods", "bookings.holidays"),
    ),
    (
        "Notifications",
        (
            "permissions.escalation_minutes",
            "mail.approval_fallback_minutes",
            "push.contact",
            "bookings.reminder_minutes",
            "bookings.collect_within_minutes",
        ),
    ),
    ("People", ("permissions.delegate_ids", "staff.end_date_notice_days", "policy.review_notice_days")),
    (
        "Retention",
        (
            "retention.permission_request_months",
            "retention.leaver_device_days",
            "retention.audit_event_years",
            "retention.case_hold",
        ),
    ),
    (
        "Safeguarding",
        (
            "safeguarding.head_name",
            "safeguarding.head_contact",
            "safeguarding.dsl_name",
            "safeguarding.dsl_contact",
            "safeguarding.deputy_dsl_name",
        ),
    ),
)
# Help for settings declared before define_setting took it (a definition's own help wins).
HELP = {
    "policy.review_notice_days": "The admins are reminded this many days before the policy's review date, and so is everyone who has not accepted it.",
    "safeguarding.head_name": "Shown on the 'Report a concern' page, like Mrs A Adeyemi.",
    "safeguarding.head_contact": "A phone extension, room or school email address, shown on the 'Report a concern' page.",
    "safeguarding.dsl_name": "The designated safeguarding lead staff should tell about images, online contact with pupils or cyber-bullying.",
    "safeguarding.dsl_contact": "A phone extension, room or school email address for the safeguarding lead.",
    "safeguarding.deputy_dsl_name": "Who to tell when the safeguarding lead is away; leave blank if there is none.",
    "staff.end_date_notice_days": "The office is told this many days before a volunteer's, supply teacher's or contractor's last day, once per person.",
    "school.name": "Shown at the top of every page and in emails.",
    "school.time_zone": "Every date and time on screen, and every 'end of lesson', is worked out in this zone.",
    "permissions.lesson_ends": "'Until the end of the lesson' means the next of these times. Separate them with commas.",
    "permissions.day_ends": "'For the rest of the day' lasts until this time, after-school clubs included.",
    "permissions.escalation_minutes": "If nobody has answered a request by then, the delegates below are asked too.",
    "mail.approval_fallback_minutes": "Approvers whose phones cannot receive push notifications get an email after this wait.",
    "push.contact": "Push services (Google, Apple, Mozilla) write here if this server sends something wrong.",
    "permissions.delegate_ids": "Approvers who are asked when the head has not answered in time.",
    "retention.permission_request_months": "Older requests, and equipment bookings that ended longer ago, are erased each night.",
    "retention.leaver_device_days": "Counted from the day the person's account is deactivated.",
    "retention.audit_event_years": "The audit log proves what happened; most schools keep it for ever.",
    "retention.case_hold": "For a complaint or investigation: say why, and nothing is erased until you clear it.",
}


def _kind(default: object, key: str) -> str:
    if key.endswith("delegate_ids"):
        return "people"
    if key == TIME_ZONE.key:
        return "zone"
    if key == PUSH_CONTACT.key:
        return "email"
    if key == LOAN_TERMS.key:
        return "long"
    if key == PERIODS.key:
        return "periods"
    if key == school_days.HOLIDAYS.key:
        return "holidays"
    if isinstance(default, bool):
        return "text"
    if isinstance(default, int):
        return "number"
    if isinstance(default, list):
        return "times"
    return "text"


def setting_fields(session: Session) -> list[SettingField]:
    return [
        SettingField(d.key, d.label, _kind(d.default, d.key), get_setting(session, d.key), d.help or HELP.get(d.key, ""))
        for d in defined_settings()
        if d.key not in _NOT_ON_THE_FORM
    ]


def setting_groups(session: Session) -> list[SettingGroup]:
    """The settings page's fields under their headings; any setting no group names comes last, under Other."""
    fields = {f.key: f for f in setting_fields(session)}
    groups = []
    for title, keys in GROUPS:
        found = [fields.pop(key) for key in keys if key in fields]
        if found:
            groups.append(SettingGroup(title, found))
    if fields:
        groups.append(SettingGroup("Other", list(fields.values())))
    return groups


def _parse_number(text: str, _raw: list[str], _approvers: dict[int, User]) -> int:
    if not text.isdigit() or int(text) > 100_000:
        raise ValueError("Enter a whole number, 0 or more.")
    return int(text)


def _parse_people(_text: str, raw: list[str], approvers: dict[int, User]) -> list[int]:
    ids = [int(v) for v in raw if v.isdigit()]
    unknown = [i for i in ids if i not in approvers]
    if unknown:
        raise ValueError("Delegates must be approvers.")
    return sorted(set(ids))


def _parse_times(text: str, _raw: list[str], _approvers: dict[int, User]) -> list[str]:
    times = [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]
    if not times or not all(_HH_MM.match(t) for t in times):
        raise ValueError("Enter times as HH:MM separated by commas, like 09:50, 10:45.")
    return sorted(f"{int(t.split(':')[0]):02d}:{t.split(':')[1]}" for t in times)


def _parse_zone(text: str, _raw: list[str], _approvers: dict[int, User]) -> str:
    if text not in known_time_zones():
        raise ValueError("Enter a time zone from the list, like Europe/London.")
    return text


def _parse_email(text: str, _raw: list[str], _approvers: dict[int, User]) -> str:
    address = text.removeprefix("mailto:")
    if address and (len(address) > 200 or not _EMAIL.match(address)):
        raise ValueError("Enter an email address, like office@school.sch.uk, or leave it blank.")
    return address


def _parse_periods(text: str, _raw: list[str], _approvers: dict[int, User]) -> str:
    return normalised(text)


def _parse_holidays(text: str, _raw: list[str], _approvers: dict[int, User]) -> str:
    return school_days.normalised(text)


# How each kind of field is read from the form; any other kind is a line of text.
_PARSERS: dict[str, Callable[[str, list[str], dict[int, User]], object]] = {
    "number": _parse_number,
    "people": _parse_people,
    "times": _parse_times,
    "zone": _parse_zone,
    "email": _parse_email,
    "periods": _parse_periods,
    "holidays": _parse_holidays,
}


def _parse(field: SettingField, raw: list[str], approvers: dict[int, User]) -> object:
    text = (raw[0] if raw else "").strip()
    parser = _PARSERS.get(field.kind)
    if parser is not None:
        return parser(text, raw, approvers)
    if field.key.endswith("_ends") and not _HH_MM.match(text):
        raise ValueError("Enter a time as HH:MM, like 18:00.")
    if field.key == LOAN_TERMS.key:
        if not text:
            raise ValueError("Enter the terms a borrower accepts.")
        if len(text) > LOAN_TERMS_LONGEST:
            raise ValueError(f"Use at most {LOAN_TERMS_LONGEST} characters.")
        return text
    if len(text) > 200:
        raise ValueError("Use at most 200 characters.")
    return text


def save_settings(session: Session, actor: User, form: dict[str, list[str]]) -> int:
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


@dataclass(frozen=True)
class ConcernContacts:
    head_name: str
    head_contact: str
    dsl_name: str
    dsl_contact: str
    deputy_dsl_name: str


def concern_contacts(session: Session) -> ConcernContacts:
    """Whom staff tell about a concern, as the settings page has them (blank when not set)."""

    def text(definition) -> str:
        return str(get_setting(session, definition.key) or "").strip()

    return ConcernContacts(text(HEAD_NAME), text(HEAD_CONTACT), text(DSL_NAME), text(DSL_CONTACT), text(DEPUTY_DSL_NAME))


def loan_terms(session: Session) -> str:
    """The wording a borrower accepts now (the default when the setting is blank)."""
    return str(get_setting(session, LOAN_TERMS.key) or "").strip() or LOAN_TERMS.default


def approver_choices(session: Session) -> list[User]:
    return users_with_role(session, Role.APPROVER)
