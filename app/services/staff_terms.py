"""Staff types and end dates: volunteers, supply staff and contractors whose accounts end by themselves.

The end date is the person's last day at the school (a school date). From the next day the
``staff.end_dates`` job deactivates the account through the same leaver flow as an admin's
deactivation (sessions ended, audited). A set number of days before, the office gets one notice per
person per end date (a changed end date gets a notice of its own).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import format_date, local_today, to_local
from app.models import EndDateNotice, Role, StaffType, User
from app.services.accounts import deactivate_user, users_with_role
from app.services.audit import record_audit_event
from app.services.errors import ValidationFailed
from app.services.notifications import notify
from app.services.settings import define_setting, get_setting

NOTICE_DAYS = define_setting("staff.end_date_notice_days", 7, "Days before a person's end date that the office is told")
STAFF_TYPE_CHOICES = tuple(StaffType)
_UK_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def parse_staff_type(text: str | None) -> StaffType | None:
    """The staff type named by its value or its label (any case); blank is the default, employee; None if unknown."""
    text = (text or "").strip().lower()
    if not text:
        return StaffType.EMPLOYEE
    for staff_type in StaffType:
        if text in (staff_type.value, staff_type.label.lower()):
            return staff_type
    return None


def parse_end_date(text: str | None) -> date | None:
    """A date written DD/MM/YYYY (as the school writes it) or YYYY-MM-DD; blank is no end date.

    Raises ValueError with a message for the person when it is neither, or not a real date.
    """
    text = (text or "").strip()
    if not text:
        return None
    if match := _UK_DATE.match(text):
        day, month, year = (int(part) for part in match.groups())
    elif match := _ISO_DATE.match(text):
        year, month, day = (int(part) for part in match.groups())
    else:
        raise ValueError("Write the end date as DD/MM/YYYY, like 31/07/2026, or leave it blank.")
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"{text} is not a real date; write it as DD/MM/YYYY.") from None


def set_staff_terms(
    session: Session, actor: User | None, user: User, *, staff_type: StaffType, end_date: date | None, via: str = "admin"
) -> list[str]:
    """Set a person's staff type and end date; audit what changed. Returns the names of the changed fields.

    An end date already passed is refused for someone still active: deactivate them instead.
    """
    if end_date is not None and end_date < local_today() and user.is_active_account and end_date != user.end_date:
        raise ValidationFailed(
            "The end date has passed.",
            {"end_date": ["Choose today or a later date; to end someone's access now, deactivate their account."]},
        )
    changed: dict[str, dict[str, object]] = {}
    if user.staff_type != staff_type.value:
        changed["staff_type"] = {"from": user.staff_type, "to": staff_type.value}
        user.staff_type = staff_type.value
    if user.end_date != end_date:
        changed["end_date"] = {
            "from": user.end_date.isoformat() if user.end_date else None,
            "to": end_date.isoformat() if end_date else None,
        }
        user.end_date = end_date
    if changed:
        session.flush()
        record_audit_event(session, actor, "user.staff_terms_changed", "user", user.id, {**changed, "via": via})
    return sorted(changed)


# The end-date job ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndDateReport:
    deactivated: int
    notices: int


def _due(session: Session, condition) -> list[User]:
    """Active people matching ``condition``, locked in id order, skipping any another writer holds."""
    return list(
        session.scalars(
            sa.select(User)
            .where(User.is_active_account.is_(True), User.end_date.is_not(None), condition)
            .order_by(User.id)
            .with_for_update(skip_locked=True)
        )
    )


def end_accounts_due(session: Session, now: datetime) -> EndDateReport:
    """Deactivate everyone whose last day has gone; tell the office about those ending soon. Idempotent."""
    today = to_local(now).date()
    ended = _due(session, User.end_date < today)
    for user in ended:
        deactivate_user(session, None, user, reason="end_date")
    days = get_setting(session, NOTICE_DAYS.key)
    days = days if isinstance(days, int) and days >= 0 else NOTICE_DAYS.default
    soon = _due(session, sa.and_(User.end_date >= today, User.end_date <= today + timedelta(days=days)))
    if soon:
        told = set(
            session.execute(
                sa.select(EndDateNotice.user_id, EndDateNotice.end_date).where(
                    EndDateNotice.user_id.in_([user.id for user in soon])
                )
            ).tuples()
        )
        soon = [user for user in soon if (user.id, user.end_date) not in told]
    office = users_with_role(session, Role.OFFICE) if soon else []
    for user in soon:
        end_date = user.end_date
        if end_date is None:  # _due keeps only people with an end date
            continue
        session.add(EndDateNotice(user_id=user.id, end_date=end_date))
        last_day = format_date(end_date)
        notify(
            session,
            [member for member in office if member.id != user.id],
            kind="staff.end_date_soon",
            title=f"{user.display_name}'s account ends after {last_day}",
            body=f"{StaffType(user.staff_type).label}: their last day is {last_day}. Collect any school equipment "
            "they have on loan; an admin can change the date on their staff page.",
            url="/equipment/loans",
        )
        record_audit_event(session, None, "user.end_date_notice_sent", "user", user.id, {"end_date": end_date.isoformat()})
    session.flush()
    return EndDateReport(len(ended), len(soon))
