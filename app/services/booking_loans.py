"""From booking to loan (issue 17, item 4): the office scans a booked item's label in its slot and lends it
to the person who booked it with one tap; the loan is due at the booking's end.

Timed jobs (registered in app/jobs.py, idempotent, rows taken with ``FOR UPDATE SKIP LOCKED``):
- a booking not collected within ``bookings.collect_within_minutes`` of its start is released, and the
  next person who booked the same thing later that day is told it is back;
- the person who booked is reminded ``bookings.reminder_minutes`` before the slot;
- when the slot has ended and what it lent is not back, they are told once (the daily loan reminders
  carry on from the next day);
- a collected booking whose loans are all back is completed, freeing the rest of its slot.

Lock order (CONTRIBUTING): the booking row, then its assets in id order, then the audit append lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import format_time, local_today, to_local, utcnow
from app.models import AuditEvent, Booking, BookingItem, BookingStatus, KitMember, Loan, SchoolAsset, User
from app.services import bookings, kit_loans, loans
from app.services.assets import require_office
from app.services.audit import record_audit_event
from app.services.errors import Conflict
from app.services.notifications import notify
from app.services.settings import define_setting, get_setting

# The office may hand a booked item over this long before its slot starts.
EARLY = timedelta(minutes=15)
COLLECT_WITHIN = define_setting(
    "bookings.collect_within_minutes",
    20,
    "Collect a booking within (minutes)",
    "A booking not collected this many minutes after its start is released, and the next person who booked "
    "the same thing that day is told.",
)
REMIND_BEFORE = define_setting(
    "bookings.reminder_minutes",
    30,
    "Remind before a booking (minutes)",
    "The person who booked is reminded this many minutes before the slot starts (0: no reminder).",
)
# The "not back yet" notice goes only for slots that ended within this time (after that the daily loan
# reminders speak for it), so a scheduler that was stopped for a week does not send a flood.
OVERDUE_LOOKBACK = timedelta(hours=12)


def _minutes(session: Session, key: str, default: int) -> int:
    value = get_setting(session, key)
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 24 * 60 else default


def slot_text(session: Session, booking: Booking) -> str:
    """Tuesday 08/12/2026, P3-P4 (11:10-13:10), in school time."""
    return bookings.describe_slot(session, booking.starts_at, booking.ends_at, booking.periods)


def what(booking: Booking) -> str:
    """The iPad trolley (KIT-01) or Class camera (CAM-001)."""
    if booking.kit is not None:
        return f"{booking.kit.name} ({booking.kit.tag})"
    if booking.asset is not None:
        return f"{booking.asset.name} ({booking.asset.tag})"
    return "the equipment"


# Collecting -----------------------------------------------------------------------------------------


def collectable_booking(
    session: Session, *, asset_id: int | None = None, kit_id: int | None = None, now: datetime | None = None
) -> Booking | None:
    """The booking of this asset or kit that may be collected now: booked (not yet collected), from
    ``EARLY`` before its start until its end. An asset in a kit answers for its kit's booking too: the
    label of any iPad on the trolley hands over the whole trolley booked."""
    if (asset_id is None) == (kit_id is None):
        return None
    now = now or utcnow()
    if asset_id is not None:
        its_kit = sa.select(KitMember.kit_id).where(KitMember.asset_id == asset_id).scalar_subquery()
        target = sa.or_(Booking.asset_id == asset_id, Booking.kit_id == its_kit)
    else:
        target = Booking.kit_id == kit_id
    return session.scalar(
        sa.select(Booking)
        .where(
            target,
            Booking.status == BookingStatus.BOOKED.value,
            Booking.starts_at <= now + EARLY,
            Booking.ends_at > now,
        )
        .order_by(Booking.starts_at, Booking.id)
        .limit(1)
    )


def _check_collectable(session: Session, booking: Booking, now: datetime) -> None:
    status = BookingStatus(booking.status)
    if status == BookingStatus.COLLECTED:
        raise Conflict(f"{what(booking)} has already been collected for this booking.")
    if status != BookingStatus.BOOKED:
        raise Conflict(f"This booking is {status.label.lower()}, so there is nothing to collect.")
    if now < booking.starts_at - EARLY:
        opens = booking.starts_at - EARLY
        raise Conflict(f"The booking is for {slot_text(session, booking)}. It can be collected from {format_time(opens)}.")
    if now >= booking.ends_at:
        raise Conflict(f"The booking ended at {format_time(booking.ends_at)}, so it cannot be collected now.")
    if not booking.booked_for.is_active_account:
        raise Conflict(f"{booking.booked_for.display_name}'s account is no longer active, so it cannot be lent to them.")


def collect(
    session: Session, actor: User, booking_id: int, *, accepted_in_person: bool = False, now: datetime | None = None
) -> list[Loan]:
    """Lend what a booking names to the person it is for, due at the booking's end (the office's one tap
    after scanning the label). Everything in it is lent, or nothing."""
    require_office(actor)
    now = now or utcnow()
    booking = bookings.lock_booking(session, booking_id)
    _check_collectable(session, booking, now)
    asset_ids = sorted(item.asset_id for item in booking.items)
    members = list(
        session.scalars(
            sa.select(SchoolAsset)
            .where(SchoolAsset.id.in_(asset_ids))
            .order_by(SchoolAsset.id)
            .with_for_update(of=SchoolAsset)
            .execution_options(populate_existing=True)
        )
    )
    if not members:
        raise Conflict("This booking names no equipment.")
    due_on = to_local(booking.ends_at).date()
    purpose = booking.purpose or f"Booked for {slot_text(session, booking)}"
    lending = kit_loans.Lending(booking.booked_for, due_on, purpose[:200], "", accepted_in_person)
    made = kit_loans.lend_assets(session, actor, members, lending)
    by_asset = {loan.asset_id: loan for loan in made}
    for item in booking.items:
        item.loan_id = by_asset[item.asset_id].id
    for loan in made:
        # The booking's end is the deadline: the "due today" notice would only repeat it; the overdue
        # notice below goes when the slot ends without it back.
        loan.last_reminded_on = local_today() if due_on == local_today() else None
    booking.status = BookingStatus.COLLECTED.value
    booking.collected_at = now
    booking.loan_id = made[0].id if booking.asset_id is not None else None
    session.flush()
    record_audit_event(
        session,
        actor,
        "booking.collected",
        "booking",
        booking.id,
        {
            "thing": what(booking),
            "slot": slot_text(session, booking),
            "borrower_id": booking.booked_for_id,
            "count": len(made),
            "loan_ids": [loan.id for loan in made][:100],
            "due_on": due_on.isoformat(),
            "terms": loans.TERMS_IN_PERSON if accepted_in_person else "asked",
        },
        related={"user": booking.booked_for_id, "asset": booking.asset_id, "kit": booking.kit_id},
    )
    if not accepted_in_person:
        kit_loans.ask_for_terms(session, made, what(booking))
    return made


# Timed jobs -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookingJobReport:
    released: int = 0
    reminded: int = 0
    overdue_told: int = 0
    completed: int = 0


def _told(session: Session, booking: Booking) -> dict:
    """What a timed job's audit event says about the booking (its sentence reads these)."""
    return {"booked_for_id": booking.booked_for_id, "thing": what(booking), "slot": slot_text(session, booking)}


def _lock_bookings(session: Session, condition) -> list[Booking]:
    """Lock the bookings matching ``condition`` (skipping rows another transaction holds), then read them fresh."""
    ids = list(session.scalars(sa.select(Booking.id).where(condition).order_by(Booking.id).with_for_update(skip_locked=True)))
    if not ids:
        return []
    return list(
        session.scalars(
            sa.select(Booking).where(Booking.id.in_(ids)).order_by(Booking.id).execution_options(populate_existing=True)
        ).unique()
    )


def _already_done(session: Session, action: str, bookings: list[Booking]) -> set[str]:
    """Which of these bookings already have ``action`` in the audit log (the job's memory, one query)."""
    if not bookings:
        return set()
    return set(
        session.scalars(
            sa.select(AuditEvent.subject_id).where(
                AuditEvent.subject_type == "booking",
                AuditEvent.subject_id.in_([str(b.id) for b in bookings]),
                AuditEvent.action == action,
            )
        )
    )


def next_in_line(session: Session, booking: Booking) -> Booking | None:
    """The next booking of the same thing (or of any asset it covers) later the same school day."""
    start = to_local(booking.starts_at)
    day_end = start.replace(hour=23, minute=59, second=59)
    asset_ids = [item.asset_id for item in booking.items]
    shares = sa.or_(
        Booking.asset_id == booking.asset_id if booking.asset_id is not None else sa.false(),
        Booking.kit_id == booking.kit_id if booking.kit_id is not None else sa.false(),
        Booking.id.in_(sa.select(BookingItem.booking_id).where(BookingItem.asset_id.in_(asset_ids))),
    )
    return session.scalar(
        sa.select(Booking)
        .where(
            shares,
            Booking.id != booking.id,
            Booking.status == BookingStatus.BOOKED.value,
            Booking.starts_at > booking.starts_at,
            Booking.starts_at <= day_end,
        )
        .order_by(Booking.starts_at, Booking.id)
        .limit(1)
    )


def release_uncollected(session: Session, now: datetime) -> int:
    """Release bookings nobody collected in time; tell the booker and the next person in line."""
    within = timedelta(minutes=_minutes(session, COLLECT_WITHIN.key, COLLECT_WITHIN.default))
    late = _lock_bookings(
        session,
        sa.and_(
            Booking.status == BookingStatus.BOOKED.value,
            sa.or_(Booking.starts_at <= now - within, Booking.ends_at <= now),
        ),
    )
    for booking in late:
        booking.released_at = now
        bookings.close_booking(session, booking, BookingStatus.RELEASED)
        following = next_in_line(session, booking)
        record_audit_event(
            session,
            None,
            "booking.released",
            "booking",
            booking.id,
            {**_told(session, booking), "next_booking_id": following.id if following else None},
            related={"user": booking.booked_for_id, "asset": booking.asset_id, "kit": booking.kit_id},
        )
        notify(
            session,
            [booking.booked_for],
            kind="booking.released",
            title=f"Your booking of {what(booking)} was released",
            body=f"It was not collected within {within.seconds // 60} minutes of the start ({slot_text(session, booking)}), "
            "so others may have it. Book again if you still need it.",
            url="/bookings",
            extra={"kind": "booking.released", "booking_id": booking.id},
        )
        if following is not None:
            notify(
                session,
                [following.booked_for],
                kind="booking.free_earlier",
                title=f"{what(following)} is back at the office",
                body=f"The booking before yours was not collected. Yours is for {slot_text(session, following)}; "
                f"the office can hand it over from {format_time(following.starts_at - EARLY)}.",
                url="/bookings",
                extra={"kind": "booking.free_earlier", "booking_id": following.id},
            )
    return len(late)


def remind_before_slot(session: Session, now: datetime) -> int:
    """Remind the booker shortly before the slot (once per booking)."""
    minutes = _minutes(session, REMIND_BEFORE.key, REMIND_BEFORE.default)
    if minutes == 0:
        return 0
    soon = _lock_bookings(
        session,
        sa.and_(
            Booking.status == BookingStatus.BOOKED.value,
            Booking.starts_at > now,
            Booking.starts_at <= now + timedelta(minutes=minutes),
        ),
    )
    done = _already_done(session, "booking.reminder_sent", soon)
    due = [b for b in soon if str(b.id) not in done]
    for booking in due:
        notify(
            session,
            [booking.booked_for],
            kind="booking.starts_soon",
            title=f"{what(booking)} is booked for you at {format_time(booking.starts_at)}",
            body=f"{slot_text(session, booking)}. Collect it from the office; a booking not collected within "
            f"{_minutes(session, COLLECT_WITHIN.key, COLLECT_WITHIN.default)} minutes of its start is released.",
            url="/bookings",
            extra={"kind": "booking.starts_soon", "booking_id": booking.id},
        )
        record_audit_event(
            session,
            None,
            "booking.reminder_sent",
            "booking",
            booking.id,
            _told(session, booking),
            related={"user": booking.booked_for_id},
        )
    return len(due)


def _open_loans_by_booking(session: Session, bookings: list[Booking]) -> dict[int, list[Loan]]:
    ids = [b.id for b in bookings]
    if not ids:
        return {}
    rows = session.execute(
        sa.select(BookingItem.booking_id, Loan)
        .join(Loan, Loan.id == BookingItem.loan_id)
        .where(BookingItem.booking_id.in_(ids), Loan.returned_at.is_(None))
    ).all()
    found: dict[int, list[Loan]] = {}
    for booking_id, loan in rows:
        found.setdefault(booking_id, []).append(loan)
    return found


def tell_overdue(session: Session, now: datetime) -> int:
    """Tell the booker once when the slot has ended and what it lent is not back."""
    ended = _lock_bookings(
        session,
        sa.and_(
            Booking.status == BookingStatus.COLLECTED.value,
            Booking.ends_at <= now,
            Booking.ends_at > now - OVERDUE_LOOKBACK,
        ),
    )
    out = _open_loans_by_booking(session, ended)
    waiting = [b for b in ended if out.get(b.id)]
    done = _already_done(session, "booking.overdue_told", waiting)
    due = [b for b in waiting if str(b.id) not in done]
    for booking in due:
        tags = kit_loans.tag_line(sorted(loan.asset.tag for loan in out[booking.id]))
        notify(
            session,
            [booking.booked_for],
            kind="booking.overdue",
            title=f"{what(booking)} was due back at {format_time(booking.ends_at)}",
            body=f"Please bring it back to the school office: {tags}.",
            url="/my-loans",
            extra={"kind": "booking.overdue", "booking_id": booking.id},
        )
        record_audit_event(
            session,
            None,
            "booking.overdue_told",
            "booking",
            booking.id,
            {**_told(session, booking), "not_back": len(out[booking.id])},
            related={"user": booking.booked_for_id},
        )
    return len(due)


def complete_returned(session: Session, now: datetime) -> int:
    """Complete collected bookings whose loans are all back (the rest of the slot is free again)."""
    still_out = (
        sa.select(BookingItem.id)
        .join(Loan, Loan.id == BookingItem.loan_id)
        .where(BookingItem.booking_id == Booking.id, Loan.returned_at.is_(None))
    )
    done = _lock_bookings(session, sa.and_(Booking.status == BookingStatus.COLLECTED.value, ~sa.exists(still_out)))
    for booking in done:
        bookings.close_booking(session, booking, BookingStatus.COMPLETED)
        record_audit_event(
            session,
            None,
            "booking.completed",
            "booking",
            booking.id,
            {**_told(session, booking), "early": now < booking.ends_at},
            related={"user": booking.booked_for_id, "asset": booking.asset_id, "kit": booking.kit_id},
        )
    return len(done)


def run_booking_jobs(session: Session, now: datetime) -> BookingJobReport:
    """The scheduler's job: every tick, in one transaction with the other jobs (see app/jobs.py)."""
    return BookingJobReport(
        released=release_uncollected(session, now),
        reminded=remind_before_slot(session, now),
        overdue_told=tell_overdue(session, now),
        completed=complete_returned(session, now),
    )
