"""Lending school equipment: check-out, check-in, overdue loans and reminders (journey J4)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.clock import format_date, local_today, to_local, utcnow
from app.database import lock_for_append
from app.models import AssetStatus, AuditEvent, Loan, Role, SchoolAsset, User
from app.services.accounts import users_with_role
from app.services.assets import lock_asset, require_office
from app.services.audit import record_audit_event
from app.services.bookings import refuse_lending_over_a_booking
from app.services.errors import Conflict, NotFound, ValidationFailed
from app.services.notifications import notify
from app.services.school_settings import loan_terms
from app.services.settings import define_setting, get_setting

LONGEST_LOAN = timedelta(days=366)
DEFAULT_DAYS = define_setting(
    "loans.default_days",
    7,
    "Usual loan length (days)",
    "A check-out's due date starts this many days from today; the office can change it on each loan.",
)
# Reminders go out from this school time on, never in the night (the scheduler ticks round the clock).
REMINDERS_FROM = time(8, 0)
REMINDER_LOCK = 7_005_001
NOT_LENDABLE = {
    AssetStatus.RETIRED.value: "is retired",
    AssetStatus.LOST.value: "is recorded as lost",
    AssetStatus.IN_REPAIR.value: "is in repair",
}


def default_due_on(session: Session, today: date | None = None) -> date:
    """Today (school date) plus the school's usual loan length, kept within the longest loan allowed."""
    days = get_setting(session, DEFAULT_DAYS.key)
    days = days if isinstance(days, int) and not isinstance(days, bool) else DEFAULT_DAYS.default
    return (today or local_today()) + timedelta(days=max(0, min(days, LONGEST_LOAN.days)))


def due_date_example(session: Session) -> str:
    """How to write a due date, with a real one (the usual due date), never a date that has passed."""
    return f"Enter the date it is due back, like {format_date(default_due_on(session))}."


def open_loan_for(session: Session, asset_id: int) -> Loan | None:
    return session.scalar(sa.select(Loan).where(Loan.asset_id == asset_id, Loan.returned_at.is_(None)))


def _borrower(session: Session, borrower_id: int | None) -> User | None:
    if borrower_id is None:
        return None
    # Their roles are not needed to lend them something: no select-in of role rows (issue 13).
    user = session.get(User, borrower_id, options=[so.lazyload(User.role_rows)])
    return user if user is not None and user.is_active_account else None


def check_out(
    session: Session,
    actor: User,
    asset_id: int,
    *,
    borrower_id: int | None,
    due_on: date | None,
    purpose: str = "",
    condition: str = "",
    accepted_in_person: bool = False,
) -> Loan:
    """Lend an asset to a member of staff until a school date. The loan keeps the school's terms as worded
    now: ``accepted_in_person`` records that the borrower accepted them at the office; otherwise the
    borrower is sent a notice to accept them on their own phone."""
    require_office(actor)
    asset = lock_asset(session, asset_id)
    borrower = _borrower(session, borrower_id)
    errors: dict[str, list[str]] = {}
    today = local_today()
    if borrower is None:
        errors["borrower_id"] = ["Choose who is borrowing it."]
    if due_on is None:
        errors["due_on"] = [due_date_example(session)]
    elif due_on < today:
        errors["due_on"] = [f"The due date must be today ({format_date(today)}) or later."]
    elif due_on > today + LONGEST_LOAN:
        errors["due_on"] = ["A loan can last at most a year; choose an earlier due date."]
    if len(purpose.strip()) > 200:
        errors["purpose"] = ["Use at most 200 characters."]
    if len(condition.strip()) > 500:
        errors["condition"] = ["Use at most 500 characters."]
    current = open_loan_for(session, asset.id)
    if current is not None:
        raise Conflict(
            f"{asset.tag} is already on loan to {current.borrower.display_name} "
            f"(since {format_date(current.out_at)}). Check it in before lending it again."
        )
    if asset.status in NOT_LENDABLE:
        raise Conflict(f"{asset.tag} {NOT_LENDABLE[asset.status]}, so it cannot be lent.")
    if errors or borrower is None or due_on is None:
        raise ValidationFailed("Some details need correcting.", errors)
    refuse_lending_over_a_booking(session, [asset], borrower.id, due_on)
    loan = Loan(
        asset_id=asset.id,
        borrower_id=borrower.id,
        issued_by_id=actor.id,
        # The loaded rows as well as their ids: the session's identity map holds rows only weakly, so
        # without these the answer that names them would read the asset and the borrower back.
        asset=asset,
        borrower=borrower,
        issued_by=actor,
        out_at=utcnow(),
        due_on=due_on,
        purpose=purpose.strip(),
        condition_out=condition.strip(),
        terms_text=loan_terms(session),
    )
    try:
        # begin_nested() flushes what is pending first, so the new rows are added inside the savepoint.
        with session.begin_nested():
            session.add(loan)
            asset.status = AssetStatus.ON_LOAN.value
            session.flush()
    except IntegrityError as error:
        # The partial unique index on open loans: another check-out won a race the lock did not see.
        raise Conflict(f"{asset.tag} has just been lent by someone else. Reload the page to see who has it.") from error
    record_audit_event(
        session,
        actor,
        "loan.checked_out",
        "asset",
        asset.id,
        {"loan_id": loan.id, "tag": asset.tag, "borrower_id": borrower.id, "due_on": due_on.isoformat()},
        related={"user": borrower.id},
    )
    if accepted_in_person:
        _accept(session, actor, loan, TERMS_IN_PERSON)
    else:
        notify(
            session,
            [borrower],
            kind="loan.terms",
            title=f"Please accept the terms for {asset.name} ({asset.tag})",
            body=f"It is lent to you until {format_date(due_on)}. Read the school's terms and tap I accept.",
            url=terms_url(loan),
            extra={"kind": "loan.terms", "loan_id": loan.id},
        )
    return loan


# The borrower's terms --------------------------------------------------------------------------------

TERMS_IN_PERSON = "in_person"
TERMS_OWN_PHONE = "own_phone"


def accepted_via(loan: Loan) -> Literal["in_person", "own_phone"] | None:
    """How the borrower accepted the terms, for the API (None: not yet)."""
    via = loan.terms_accepted_via
    return "in_person" if via == TERMS_IN_PERSON else "own_phone" if via == TERMS_OWN_PHONE else None


def terms_url(loan: Loan) -> str:
    return f"/loans/{loan.id}/terms"


def _accept(session: Session, actor: User, loan: Loan, via: str) -> None:
    loan.terms_accepted_at = utcnow()
    loan.terms_accepted_via = via
    loan.terms_recorded_by_id = actor.id
    session.flush()
    record_audit_event(
        session,
        actor,
        "loan.terms_accepted",
        "asset",
        loan.asset_id,
        {"loan_id": loan.id, "tag": loan.asset.tag, "borrower_id": loan.borrower_id, "via": via},
        related={"user": loan.borrower_id},
    )


def borrowers_loan(session: Session, viewer: User, loan_id: int) -> Loan:
    """A loan as its borrower sees it to accept the terms; anyone else's (the office's too) is no loan at all."""
    loan = session.get(Loan, loan_id)
    if loan is None or loan.borrower_id != viewer.id:
        raise NotFound("There is no such loan.")
    return loan


def accept_terms(session: Session, borrower: User, loan_id: int) -> Loan:
    """The borrower accepts the terms kept with their loan, on their own phone. Only once, and only while
    they still have it."""
    loan = borrowers_loan(session, borrower, loan_id)
    if loan.terms_accepted_at is not None:
        raise Conflict(f"You accepted the terms for {loan.asset.tag} on {format_date(loan.terms_accepted_at)}.")
    if loan.returned_at is not None:
        raise Conflict(f"{loan.asset.tag} has been returned, so there is nothing to accept.")
    _accept(session, borrower, loan, TERMS_OWN_PHONE)
    return loan


def check_in(session: Session, actor: User, asset_id: int, *, condition: str = "", damaged: bool = False) -> Loan:
    """Take an asset back, noting its condition; a damaged asset goes to repair."""
    require_office(actor)
    asset = lock_asset(session, asset_id)
    loan = open_loan_for(session, asset.id)
    if loan is None:
        raise Conflict(f"{asset.tag} is not on loan, so there is nothing to check in.")
    if len(condition.strip()) > 500:
        raise ValidationFailed("Some details need correcting.", {"condition": ["Use at most 500 characters."]})
    loan.returned_at = utcnow()
    loan.received_by_id = actor.id
    loan.condition_in = condition.strip()
    loan.damaged = bool(damaged)
    asset.status = AssetStatus.IN_REPAIR.value if damaged else AssetStatus.AVAILABLE.value
    session.flush()
    record_audit_event(
        session,
        actor,
        "loan.checked_in",
        "asset",
        asset.id,
        {"loan_id": loan.id, "tag": asset.tag, "damaged": loan.damaged, "late": loan.due_on < local_today()},
        related={"user": loan.borrower_id},
    )
    return loan


def get_loan(session: Session, loan_id: int) -> Loan:
    loan = session.get(Loan, loan_id)
    if loan is None:
        raise NotFound("There is no such loan.")
    return loan


def visible_loan(session: Session, viewer: User, loan_id: int) -> Loan:
    """The office sees every loan; staff see their own, and anyone else's is indistinguishable from none."""
    loan = session.get(Loan, loan_id)
    if loan is None or (loan.borrower_id != viewer.id and not viewer.has_role(Role.OFFICE)):
        raise NotFound("There is no such loan.")
    return loan


def loans_of(session: Session, borrower: User, *, include_returned: bool = True, limit: int = 200) -> list[Loan]:
    """A person's loans, open ones first, newest first."""
    query = sa.select(Loan).options(*LIST_OPTIONS).where(Loan.borrower_id == borrower.id)
    if not include_returned:
        query = query.where(Loan.returned_at.is_(None))
    return list(session.scalars(query.order_by(Loan.returned_at.is_not(None), Loan.out_at.desc(), Loan.id.desc()).limit(limit)))


# Lists show tags, names and people: skip the IMEI and role rows each of those would otherwise bring along.
# The office staff who issue and receive loans are few, so they come in one extra query, not a join per row.
LIST_OPTIONS = (
    so.joinedload(Loan.asset).lazyload(SchoolAsset.imei_row),
    so.joinedload(Loan.borrower).lazyload(User.role_rows),
    so.selectinload(Loan.issued_by).lazyload(User.role_rows),
    so.selectinload(Loan.received_by).lazyload(User.role_rows),
    so.selectinload(Loan.terms_recorded_by).lazyload(User.role_rows),
)
PAGE_SIZE = 100


def open_loans(
    session: Session, *, overdue_only: bool = False, today: date | None = None, limit: int = PAGE_SIZE, offset: int = 0
) -> list[Loan]:
    """Loans not yet returned, soonest due first; with ``overdue_only`` those due before today (school date)."""
    query = sa.select(Loan).options(*LIST_OPTIONS).where(Loan.returned_at.is_(None))
    if overdue_only:
        query = query.where(Loan.due_on < (today or local_today()))
    return list(session.scalars(query.order_by(Loan.due_on, Loan.id).limit(limit).offset(offset)))


def overdue_loans(session: Session, today: date | None = None, limit: int = PAGE_SIZE, offset: int = 0) -> list[Loan]:
    return open_loans(session, overdue_only=True, today=today, limit=limit, offset=offset)


def overdue_count(session: Session, today: date | None = None) -> int:
    return (
        session.scalar(
            sa.select(sa.func.count()).select_from(Loan).where(Loan.returned_at.is_(None), Loan.due_on < (today or local_today()))
        )
        or 0
    )


def days_overdue(loan: Loan, today: date | None = None) -> int:
    return max(0, ((today or local_today()) - loan.due_on).days) if loan.returned_at is None else 0


# Built once (it runs on every visit to a door page): without the assets' IMEI rows, as the door page
# names the asset, nothing more.
_ASSETS_ON_LOAN_TO = (
    sa.select(SchoolAsset)
    .options(so.lazyload(SchoolAsset.imei_row))
    .join(Loan, sa.and_(Loan.asset_id == SchoolAsset.id, Loan.returned_at.is_(None)))
    .where(Loan.borrower_id == sa.bindparam("borrower_id"))
    .order_by(SchoolAsset.tag)
)


def assets_on_loan_to(session: Session, user: User) -> list[SchoolAsset]:
    """The school assets a person has on loan now: what they may name in a permission request."""
    return list(session.scalars(_ASSETS_ON_LOAN_TO, {"borrower_id": user.id}))


def borrowers(session: Session) -> list[User]:
    """Everyone who may borrow: every active member of staff."""
    return list(session.scalars(sa.select(User).where(User.is_active_account.is_(True)).order_by(User.display_name)))


# Reminders -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderReport:
    school_date: date
    borrowers_reminded: int
    summary_sent: bool
    overdue_count: int


def _summary_sent_on(session: Session, today: date) -> bool:
    last = session.scalar(
        sa.select(AuditEvent.details)
        .where(AuditEvent.action == "loan.overdue_summary_sent")
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    return last is not None and json.loads(last).get("on") == today.isoformat()


def send_loan_reminders(session: Session, now: datetime | None = None) -> ReminderReport:
    """Remind borrowers on the due day and each day after (once a day per loan), and send the office
    a daily overdue summary. Safe to run as often as you like: a second run the same day sends nothing.

    Run inside a write transaction (``write_intent()``); the caller commits.
    """
    now = now or utcnow()
    today = to_local(now).date()
    lock_for_append(session, REMINDER_LOCK)  # two schedulers on PostgreSQL must not both send
    due = session.scalars(
        sa.select(Loan)
        .where(
            Loan.returned_at.is_(None),
            Loan.due_on <= today,
            sa.or_(Loan.last_reminded_on.is_(None), Loan.last_reminded_on < today),
        )
        .order_by(Loan.due_on, Loan.id)
    ).all()
    for loan in due:
        asset = loan.asset
        if loan.due_on == today:
            kind, title = "loan.due_today", f"{asset.name} ({asset.tag}) is due back today"
            body = "Please bring it back to the school office by the end of the day."
        else:
            kind, title = "loan.overdue", f"{asset.name} ({asset.tag}) is overdue"
            body = f"It was due back on {format_date(loan.due_on)}. Please return it to the school office."
        notify(
            session, [loan.borrower], kind=kind, title=title, body=body, url="/my-loans", extra={"kind": kind, "loan_id": loan.id}
        )
        loan.last_reminded_on = today
        record_audit_event(
            session,
            None,
            "loan.reminder_sent",
            "asset",
            asset.id,
            {"loan_id": loan.id, "borrower_id": loan.borrower_id, "on": today.isoformat(), "overdue": loan.due_on < today},
            related={"user": loan.borrower_id},
        )
    count = overdue_count(session, today)
    summary_sent = False
    if count and not _summary_sent_on(session, today):
        first = open_loans(session, overdue_only=True, today=today, limit=50)
        names = "; ".join(f"{loan.asset.tag} with {loan.borrower.display_name}" for loan in first[:5])
        more = f" and {count - 5} more" if count > 5 else ""
        notify(
            session,
            users_with_role(session, Role.OFFICE),
            kind="loan.overdue_summary",
            title=f"{count} loan{'s are' if count != 1 else ' is'} overdue",
            body=names + more,
            url="/equipment/overdue",
            extra={"kind": "loan.overdue_summary", "loan_id": None, "loan_ids": [loan.id for loan in first]},
        )
        record_audit_event(session, None, "loan.overdue_summary_sent", "", "", {"on": today.isoformat(), "overdue": count})
        summary_sent = True
    session.flush()
    return ReminderReport(today, len(due), summary_sent, count)


def scheduled_loan_reminders(session: Session, now: datetime) -> ReminderReport | None:
    """The embedded scheduler's job: from 08:00 school time, send what is due (once a day, as above)."""
    if to_local(now).time() < REMINDERS_FROM:
        return None
    return send_loan_reminders(session, now)


def loan_json(loan: Loan, today: date | None = None) -> dict:
    """A loan as the API and the data export show it."""
    today = today or local_today()
    return {
        "id": loan.id,
        "asset": {"id": loan.asset.id, "tag": loan.asset.tag, "name": loan.asset.name},
        "borrower": {"id": loan.borrower.id, "name": loan.borrower.display_name},
        "issued_by": {"id": loan.issued_by.id, "name": loan.issued_by.display_name},
        "out_at": loan.out_at.isoformat(),
        "due_on": loan.due_on.isoformat(),
        "purpose": loan.purpose,
        "condition_out": loan.condition_out,
        "returned_at": loan.returned_at.isoformat() if loan.returned_at else None,
        "received_by": {"id": loan.received_by.id, "name": loan.received_by.display_name} if loan.received_by else None,
        "condition_in": loan.condition_in,
        "damaged": loan.damaged,
        "terms_text": loan.terms_text,
        "terms_accepted_at": loan.terms_accepted_at.isoformat() if loan.terms_accepted_at else None,
        "terms_accepted_via": loan.terms_accepted_via,
        "overdue": loan.is_overdue(today),
    }
