"""Booking school equipment ahead (issue 17): an asset or a kit, for a day's lesson periods or a time range.

A booking holds one ``BookingItem`` per asset it covers (a kit's members each get one), and active items
of one asset never overlap: PostgreSQL refuses it with an exclusion constraint (turned into the same
``BookingClash`` as the check below, at the flush in a savepoint); on SQLite every writer holds
``BEGIN IMMEDIATE``, so the check made here inside the write transaction sees every committed booking.
The assets are locked in id order first (the same lock a check-out takes), then the audit lock, last.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.clock import as_utc, format_date, local_today, school_zone, to_local, utcnow
from app.models import (
    AssetStatus,
    BookableBy,
    Booking,
    BookingItem,
    BookingStatus,
    Kit,
    KitMember,
    Loan,
    Role,
    SchoolAsset,
    User,
)
from app.services.assets import TAG_PATTERN, find_by_tag, lock_asset, normalise_tag
from app.services.audit import record_audit_event
from app.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.services.notifications import notify
from app.services.periods import Period, school_periods
from app.services.school_days import not_a_school_day, school_days_from, school_holidays

LONGEST_SCHOOL_DAYS = 5  # a booking lasts at most a school week
FURTHEST_AHEAD = timedelta(days=366)
NEXT_FREE_SCHOOL_DAYS = 5  # how far ahead the refusal looks for the next free slot
PURPOSE_LONGEST = 200
OPEN = (BookingStatus.BOOKED.value, BookingStatus.COLLECTED.value)
NOT_BOOKABLE_STATUSES = {
    AssetStatus.RETIRED.value: "is retired",
    AssetStatus.LOST.value: "is recorded as lost",
    AssetStatus.IN_REPAIR.value: "is in repair",
}


class BookingClash(Conflict):
    """The slot is taken: says by whom (their name only) and the next free slot of the same length."""

    title = "Already booked"

    def __init__(self, message: str, *, holder: str, next_free: tuple[datetime, datetime] | None) -> None:
        super().__init__(message)
        self.holder = holder
        self.next_free = next_free
        self.problem_extra: dict[str, object] = {
            "holder": holder,
            "next_free": {"starts_at": next_free[0].isoformat(), "ends_at": next_free[1].isoformat()} if next_free else None,
        }


@dataclass(frozen=True)
class Busy:
    """When an asset is taken: by a booking (who booked it) or by an open loan (who has it)."""

    starts_at: datetime
    ends_at: datetime
    kind: str  # "booked" or "on_loan"
    who: str
    booking_id: int | None
    asset_id: int


@dataclass(frozen=True)
class Slot:
    starts_at: datetime
    ends_at: datetime
    periods: str | None


# Who may book what --------------------------------------------------------------------------------------


def is_office(user: User) -> bool:
    return user.has_role(Role.OFFICE, Role.ADMIN)


def require_office_or_admin(actor: User) -> None:
    if actor is None or not is_office(actor):
        raise Forbidden("Only the school office and admins manage bookable equipment.")


def may_book(user: User, bookable_by: str | None) -> bool:
    """All staff, approvers, office only, admins only; the office and admins may book anything bookable."""
    if not bookable_by:
        return False
    if is_office(user) or bookable_by == BookableBy.EVERYONE.value:
        return True
    if bookable_by == BookableBy.APPROVER.value:
        return user.has_role(Role.APPROVER)
    return False


def _allowed_values(user: User) -> list[str]:
    return [value.value for value in BookableBy if may_book(user, value.value)]


def bookable_assets(session: Session, user: User) -> list[SchoolAsset]:
    """Assets the person may book, by name (an asset in a kit is booked with its kit, not alone)."""
    return list(
        session.scalars(
            sa.select(SchoolAsset)
            .where(
                SchoolAsset.bookable_by.in_(_allowed_values(user)),
                SchoolAsset.status.not_in(list(NOT_BOOKABLE_STATUSES)),
                SchoolAsset.id.not_in(sa.select(KitMember.asset_id)),
            )
            .order_by(SchoolAsset.name, SchoolAsset.id)
        )
    )


def bookable_kits(session: Session, user: User) -> list[Kit]:
    return list(
        session.scalars(
            sa.select(Kit).where(Kit.bookable_by.in_(_allowed_values(user)), Kit.retired_at.is_(None)).order_by(Kit.name, Kit.id)
        )
    )


# Slots ------------------------------------------------------------------------------------------------


def _at(day: date, moment: time) -> datetime:
    return as_utc(datetime.combine(day, moment, tzinfo=school_zone()))


def school_days_between(first: date, last: date) -> int:
    """Monday to Friday days from ``first`` to ``last``, both counted."""
    days = 0
    current = first
    while current <= last:
        days += current.weekday() < 5
        current += timedelta(days=1)
    return days


def _period_slot(day: date, chosen: Sequence[str], periods: list[Period]) -> tuple[Slot | None, str]:
    labels = [p.label for p in periods]
    wanted = {label.strip().upper() for label in chosen if label.strip()}
    unknown = wanted - {label.upper() for label in labels}
    if unknown:
        return None, f"Choose from the school's periods: {', '.join(labels)}."
    picked = [index for index, p in enumerate(periods) if p.label.upper() in wanted]
    if picked != list(range(picked[0], picked[-1] + 1)):
        return None, "Choose periods next to each other (book the others separately)."
    first, last = periods[picked[0]], periods[picked[-1]]
    name = first.label if first is last else f"{first.label}-{last.label}"
    return Slot(_at(day, first.starts), _at(day, last.ends), name), ""


def _time_slot(day: date, until_day: date | None, starts: time | None, ends: time | None) -> tuple[Slot | None, dict]:
    errors: dict[str, list[str]] = {}
    if starts is None:
        errors["starts"] = ["Enter the time you need it from, like 11:10."]
    if ends is None:
        errors["ends"] = ["Enter the time you will bring it back by, like 12:10."]
    last_day = until_day or day
    if last_day < day:
        errors["until_day"] = ["The last day must be the first day or later."]
    elif (last_day - day).days > 7 + LONGEST_SCHOOL_DAYS:
        errors["until_day"] = [f"A booking can last at most {LONGEST_SCHOOL_DAYS} school days."]
    if errors or starts is None or ends is None:
        return None, errors
    slot = Slot(_at(day, starts), _at(last_day, ends), None)
    if slot.ends_at <= slot.starts_at:
        return None, {"ends": ["The end must be after the start."]}
    if school_days_between(day, last_day) > LONGEST_SCHOOL_DAYS:
        return None, {"until_day": [f"A booking can last at most {LONGEST_SCHOOL_DAYS} school days."]}
    return slot, {}


def _refuse_days_off(session: Session, day: date, until_day: date | None) -> None:
    """Nothing is booked at a weekend or in a school holiday (the settings page lists them): a booking's
    first and last day must be school days, said in words that name the holiday."""
    holidays = school_holidays(session)
    for field, each in (("day", day), ("until_day", until_day)):
        if each is not None and (why := not_a_school_day(each, holidays)):
            raise ValidationFailed(why, {field: [why]})


def choose_slot(
    session: Session,
    *,
    day: date | None,
    periods: Sequence[str] = (),
    starts: time | None = None,
    ends: time | None = None,
    until_day: date | None = None,
) -> Slot:
    """The slot asked for, checked: known neighbouring periods or a start before an end, not over, not too far."""
    if day is None:
        raise ValidationFailed("Choose the day.", {"day": [f"Enter the day, like {format_date(local_today())}."]})
    today = local_today()
    if day < today:
        raise ValidationFailed("That day has passed.", {"day": ["That day has passed; choose today or a later day."]})
    if day > today + FURTHEST_AHEAD:
        raise ValidationFailed("That is too far ahead.", {"day": ["Bookings can be made up to a year ahead."]})
    _refuse_days_off(session, day, until_day)
    chosen = [p for p in periods if p.strip()]
    if chosen and (starts is not None or ends is not None):
        raise ValidationFailed("Choose periods or times, not both.", {"periods": ["Choose periods or times, not both."]})
    if chosen:
        slot, message = _period_slot(day, chosen, school_periods(session))
        if slot is None:
            raise ValidationFailed(message, {"periods": [message]})
    else:
        if starts is None and ends is None:
            message = "Choose the lesson periods, or the times you need it."
            raise ValidationFailed(message, {"periods": [message]})
        slot, errors = _time_slot(day, until_day, starts, ends)
        if slot is None:
            raise ValidationFailed("Some details need correcting.", errors)
    now = utcnow()
    if slot.ends_at <= now:
        raise ValidationFailed("That time has passed.", {"day": ["That time has passed; choose a later day or period."]})
    if slot.starts_at > now + FURTHEST_AHEAD:
        raise ValidationFailed("That is too far ahead.", {"day": ["Bookings can be made up to a year ahead."]})
    return slot


# Busy times -------------------------------------------------------------------------------------------


def _loan_until(loan: Loan, now: datetime) -> datetime:
    """An open loan keeps the asset until the end of its due day (an overdue one: until the end of today)."""
    due_day = max(loan.due_on, to_local(now).date())
    return _at(due_day + timedelta(days=1), time(0, 0))


def busy_times(session: Session, asset_ids: Iterable[int], start: datetime, end: datetime) -> list[Busy]:
    """Every active booking item and open loan of these assets that overlaps [start, end), in two queries.

    A loan made from a booking shows as that booking (its slot), not as the loan's whole due day."""
    ids = sorted(set(asset_ids))
    if not ids:
        return []
    items = session.execute(
        sa.select(BookingItem, Booking)
        .join(Booking, Booking.id == BookingItem.booking_id)
        .where(
            BookingItem.asset_id.in_(ids),
            BookingItem.active.is_(True),
            BookingItem.starts_at < end,
            BookingItem.ends_at > start,
        )
        .order_by(BookingItem.starts_at, BookingItem.id)
    ).all()
    busy = [Busy(as_utc(i.starts_at), as_utc(i.ends_at), "booked", b.booked_for.display_name, b.id, i.asset_id) for i, b in items]
    from_bookings = sa.select(BookingItem.loan_id).where(BookingItem.loan_id.is_not(None))
    now = utcnow()
    loans = session.scalars(
        sa.select(Loan).where(Loan.asset_id.in_(ids), Loan.returned_at.is_(None), Loan.id.not_in(from_bookings))
    ).all()
    for loan in loans:
        until = _loan_until(loan, now)
        if as_utc(loan.out_at) < end and until > start:
            busy.append(Busy(as_utc(loan.out_at), until, "on_loan", loan.borrower.display_name, None, loan.asset_id))
    return sorted(busy, key=lambda b: (b.starts_at, b.asset_id))


def refuse_lending_over_a_booking(session: Session, assets: Sequence[SchoolAsset], borrower_id: int, due_on: date) -> None:
    """Lending on the spot must not take what someone else has booked before the due date is over.

    The loan keeps the asset until the end of its due day; the first active booking of any of the assets
    by another person in that time refuses the loan, naming who booked it and when, so the office can
    choose an earlier due date (or lend something else). The booker's own bookings never refuse it."""
    ids = sorted(a.id for a in assets)
    if not ids:
        return
    until = _at(due_on + timedelta(days=1), time(0, 0))
    found = session.execute(
        sa.select(BookingItem, Booking)
        .join(Booking, Booking.id == BookingItem.booking_id)
        .where(
            BookingItem.asset_id.in_(ids),
            BookingItem.active.is_(True),
            BookingItem.starts_at < until,
            BookingItem.ends_at > utcnow(),
            Booking.booked_for_id != borrower_id,
        )
        .order_by(BookingItem.starts_at, BookingItem.id)
        .limit(1)
    ).first()
    if found is None:
        return
    item, booking = found
    tag = next(a.tag for a in assets if a.id == item.asset_id)
    starts = to_local(as_utc(item.starts_at))
    slot = describe_slot(session, item.starts_at, item.ends_at, booking.periods)
    if starts.date() <= local_today():
        advice = "It cannot be lent now: lend something else, or book them a free period."
    else:
        advice = f"Choose a due date before {format_date(starts)}, or lend something else."
    raise Conflict(f"{tag} is booked by {booking.booked_for.display_name} for {slot}. {advice}")


def _overlapping(busy: list[Busy], starts_at: datetime, ends_at: datetime) -> list[Busy]:
    return [b for b in busy if b.starts_at < ends_at and b.ends_at > starts_at]


def _candidates(session: Session, slot: Slot, busy: list[Busy], days: list[date]) -> Iterable[tuple[datetime, datetime]]:
    """Slots of the same length after the one asked for, in time order, on school days only (``days``):
    the same number of periods; else starting when a clash ends, or at the same time on a later school day."""
    if slot.periods:
        periods = school_periods(session)
        size = len(_period_range(periods, slot.periods)) or 1
        for each in days:
            for first in range(len(periods) - size + 1):
                start, end = _at(each, periods[first].starts), _at(each, periods[first + size - 1].ends)
                if start > slot.starts_at:
                    yield start, end
        return
    length = slot.ends_at - slot.starts_at
    same_time = to_local(slot.starts_at).time()
    starts = {b.ends_at for b in busy if b.ends_at > slot.starts_at} | {_at(each, same_time) for each in days}
    school = set(days)
    for start in sorted(s for s in starts if s > slot.starts_at):
        end = start + length
        if {to_local(start).date(), to_local(end - timedelta(microseconds=1)).date()} <= school:
            yield start, end


def _period_range(periods: list[Period], name: str) -> list[Period]:
    first, _, last = name.partition("-")
    labels = [p.label for p in periods]
    if first not in labels or (last and last not in labels):
        return []
    return periods[labels.index(first) : labels.index(last or first) + 1]


def next_free_slot(session: Session, asset_ids: list[int], slot: Slot) -> tuple[datetime, datetime] | None:
    """The next slot of the same length (same number of periods, or same duration) free for every asset,
    looking up to ``NEXT_FREE_SCHOOL_DAYS`` school days ahead; None when there is none in that time."""
    days = school_days_from(to_local(slot.starts_at).date(), NEXT_FREE_SCHOOL_DAYS + 2, school_holidays(session))
    if len(days) < NEXT_FREE_SCHOOL_DAYS + 2:
        return None
    horizon = _at(days[-1], time(0, 0))
    busy = busy_times(session, asset_ids, slot.starts_at, horizon + (slot.ends_at - slot.starts_at))
    for start, end in _candidates(session, slot, busy, days[:-1]):
        if start >= horizon:
            break
        if not _overlapping(busy, start, end):
            return start, end
    return None


def _clash(session: Session, asset_ids: list[int], slot: Slot, clashes: list[Busy], thing: str) -> BookingClash:
    holder = clashes[0].who
    how = "has it on loan" if clashes[0].kind == "on_loan" else "has booked it"
    when = f"{format_date(clashes[0].starts_at)} {to_local(clashes[0].starts_at):%H:%M}-{to_local(clashes[0].ends_at):%H:%M}"
    free = next_free_slot(session, asset_ids, slot)
    if free is None:
        after = f"Nothing of that length is free in the next {NEXT_FREE_SCHOOL_DAYS} school days."
    else:
        after = f"The next free slot is {describe_slot(session, free[0], free[1])}."
    return BookingClash(f"{thing} is taken then: {holder} {how} ({when}). {after}", holder=holder, next_free=free)


def describe_slot(session: Session, starts_at: datetime, ends_at: datetime, periods: str | None = None) -> str:
    """Tuesday 08/12/2026, P3-P4 (11:10-13:10); a slot over several days gives both ends."""
    start, end = to_local(starts_at), to_local(ends_at)
    if periods is None and start.date() == end.date():
        periods = _periods_named(session, start, end)
    if start.date() != end.date():
        return f"{start:%A} {format_date(start)} {start:%H:%M} to {end:%A} {format_date(end)} {end:%H:%M}"
    label = f"{periods} ({start:%H:%M}-{end:%H:%M})" if periods else f"{start:%H:%M}-{end:%H:%M}"
    return f"{start:%A} {format_date(start)}, {label}"


def _periods_named(session: Session, start: datetime, end: datetime) -> str | None:
    periods = school_periods(session)
    firsts = [p for p in periods if p.starts == start.time().replace(second=0, microsecond=0)]
    lasts = [p for p in periods if p.ends == end.time().replace(second=0, microsecond=0)]
    if not firsts or not lasts:
        return None
    return firsts[0].label if firsts[0] == lasts[0] else f"{firsts[0].label}-{lasts[0].label}"


# Booking ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    asset: SchoolAsset | None
    kit: Kit | None
    asset_ids: list[int]
    name: str
    bookable_by: str | None


def _target(session: Session, asset_id: int | None, kit_id: int | None) -> _Target:
    if (asset_id is None) == (kit_id is None):
        message = "Choose one piece of equipment or one kit."
        raise ValidationFailed(message, {"asset_id": [message]})
    if asset_id is not None:
        asset = session.get(SchoolAsset, asset_id)
        if asset is None:
            raise NotFound("There is no such equipment.")
        if asset.status in NOT_BOOKABLE_STATUSES:
            raise Conflict(f"{asset.name} {NOT_BOOKABLE_STATUSES[asset.status]}, so it cannot be booked.")
        kit = kit_of_asset(session, asset.id)
        if kit is not None:
            raise Conflict(f"{asset.name} is part of {kit.name}: book the kit.")
        return _Target(asset, None, [asset.id], asset.name, asset.bookable_by)
    kit = session.get(Kit, kit_id)
    if kit is None:
        raise NotFound("There is no such kit.")
    if kit.is_retired:
        raise Conflict(f"{kit.name} is retired, so it cannot be booked.")
    members = [m.asset_id for m in kit.members]
    if not members:
        raise Conflict(f"{kit.name} has nothing in it yet.")
    return _Target(None, kit, sorted(members), kit.name, kit.bookable_by)


def _booked_for(session: Session, actor: User, for_user_id: int | None) -> User:
    if for_user_id is None or for_user_id == actor.id:
        return actor
    if not is_office(actor):
        raise Forbidden("Only the office can book equipment for someone else.")
    person = session.get(User, for_user_id)
    if person is None or not person.is_active_account:
        message = "Choose a member of staff who works here."
        raise ValidationFailed(message, {"for_user_id": [message]})
    return person


def _refuse_who_may_not(actor: User, target: _Target) -> None:
    if may_book(actor, target.bookable_by):
        return
    if not target.bookable_by:
        raise Forbidden(f"{target.name} is not bookable; ask the school office.")
    who = BookableBy(target.bookable_by).label.lower()
    raise Forbidden(f"{target.name} can be booked by {who} only; ask the school office.")


def book(
    session: Session,
    actor: User,
    *,
    asset_id: int | None = None,
    kit_id: int | None = None,
    for_user_id: int | None = None,
    day: date | None,
    periods: Sequence[str] = (),
    starts: time | None = None,
    ends: time | None = None,
    until_day: date | None = None,
    purpose: str = "",
) -> Booking:
    """Book an asset or a kit (every member, all or nothing) for lesson periods or a time range."""
    target = _target(session, asset_id, kit_id)
    _refuse_who_may_not(actor, target)
    person = _booked_for(session, actor, for_user_id)
    slot = choose_slot(session, day=day, periods=periods, starts=starts, ends=ends, until_day=until_day)
    purpose = (purpose or "").strip()
    if len(purpose) > PURPOSE_LONGEST:
        raise ValidationFailed("Some details need correcting.", {"purpose": [f"Use at most {PURPOSE_LONGEST} characters."]})
    for each in target.asset_ids:  # in id order: the lock a check-out takes, so the two queue up
        lock_asset(session, each)
    clashes = _overlapping(busy_times(session, target.asset_ids, slot.starts_at, slot.ends_at), slot.starts_at, slot.ends_at)
    if clashes:
        raise _clash(session, target.asset_ids, slot, clashes, target.name)
    booking = Booking(
        booked_for_id=person.id,
        booked_by_id=actor.id,
        asset_id=target.asset.id if target.asset else None,
        kit_id=target.kit.id if target.kit else None,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        periods=slot.periods,
        purpose=purpose,
        status=BookingStatus.BOOKED.value,
    )
    booking.items = [
        BookingItem(asset_id=a, starts_at=slot.starts_at, ends_at=slot.ends_at, active=True) for a in target.asset_ids
    ]
    _insert(session, booking, target, slot)
    record_audit_event(
        session,
        actor,
        "booking.created",
        "booking",
        booking.id,
        _audit_details(booking, target.name),
        related={"user": person.id, "asset": booking.asset_id, "kit": booking.kit_id},
    )
    if person.id != actor.id:
        notify(
            session,
            [person],
            kind="booking.made",
            title=f"{target.name} is booked for you",
            body=f"{describe_slot(session, slot.starts_at, slot.ends_at, slot.periods)}, booked by {actor.display_name}.",
            url="/bookings",
            extra={"kind": "booking.made", "booking_id": booking.id},
        )
    return booking


def _insert(session: Session, booking: Booking, target: _Target, slot: Slot) -> None:
    """Flush in a savepoint: PostgreSQL's exclusion constraint is the last word on overlapping items."""
    try:
        with session.begin_nested():
            session.add(booking)
            session.flush()
    except IntegrityError as error:
        if "no_overlap" not in str(error.orig):
            raise
        clashes = _overlapping(busy_times(session, target.asset_ids, slot.starts_at, slot.ends_at), slot.starts_at, slot.ends_at)
        if clashes:
            raise _clash(session, target.asset_ids, slot, clashes, target.name) from error
        raise BookingClash(
            f"{target.name} has just been booked by someone else. Choose another time.", holder="", next_free=None
        ) from error


def _audit_details(booking: Booking, name: str) -> dict:
    details: dict[str, object] = {
        "person_id": booking.booked_for_id,
        "starts_at": as_utc(booking.starts_at).isoformat(),
        "ends_at": as_utc(booking.ends_at).isoformat(),
        "periods": booking.periods or "",
    }
    if booking.kit_id is not None:
        details |= {"kit_id": booking.kit_id, "kit": name, "items": len(booking.items)}
    else:
        details["asset_id"] = booking.asset_id
    return details


# Reading and cancelling -------------------------------------------------------------------------------


def _may_see(viewer: User, booking: Booking) -> bool:
    return viewer.id in (booking.booked_for_id, booking.booked_by_id) or is_office(viewer)


def get_booking(session: Session, viewer: User, booking_id: int) -> Booking:
    """A booking its person (or who made it) or the office may see; anyone else's is no booking at all."""
    booking = session.get(Booking, booking_id)
    if booking is None or not _may_see(viewer, booking):
        raise NotFound("There is no such booking.")
    return booking


def lock_booking(session: Session, booking_id: int) -> Booking:
    """The booking with a row lock (PostgreSQL): take it before the assets' locks and the audit lock."""
    booking = session.execute(
        sa.select(Booking).where(Booking.id == booking_id).with_for_update(of=Booking).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if booking is None:
        raise NotFound("There is no such booking.")
    return booking


def close_booking(session: Session, booking: Booking, status: BookingStatus) -> None:
    """Set a booking's status; one that no longer holds its slot frees every item (the caller audits)."""
    booking.status = status.value
    if not status.holds_the_slot:
        for item in booking.items:
            item.active = False
    session.flush()


def cancel_booking(session: Session, actor: User, booking_id: int) -> Booking:
    """The person it is for (or who made it) cancels it; the office and admins may cancel anyone's."""
    booking = lock_booking(session, booking_id)
    if not _may_see(actor, booking):
        raise NotFound("There is no such booking.")
    if booking.status != BookingStatus.BOOKED.value:
        raise Conflict(f"This booking is {booking.status_label.lower()}, so it cannot be cancelled.")
    booking.cancelled_at = utcnow()
    booking.cancelled_by_id = actor.id
    close_booking(session, booking, BookingStatus.CANCELLED)
    record_audit_event(
        session,
        actor,
        "booking.cancelled",
        "booking",
        booking.id,
        _audit_details(booking, booking.thing_name),
        related={"user": booking.booked_for_id, "asset": booking.asset_id, "kit": booking.kit_id},
    )
    if booking.booked_for_id != actor.id:
        notify(
            session,
            [booking.booked_for],
            kind="booking.cancelled",
            title=f"Your booking of {booking.thing_name} was cancelled",
            body=f"{describe_slot(session, booking.starts_at, booking.ends_at, booking.periods)}, by {actor.display_name}.",
            url="/bookings",
            extra={"kind": "booking.cancelled", "booking_id": booking.id},
        )
    return booking


def my_bookings(session: Session, user: User, *, upcoming_only: bool = True, limit: int = 200) -> list[Booking]:
    """The person's bookings, soonest first; ``upcoming_only``: those not yet over and still holding their slot."""
    query = sa.select(Booking).where(Booking.booked_for_id == user.id)
    if upcoming_only:
        query = query.where(Booking.ends_at > utcnow(), Booking.status.in_(OPEN)).order_by(Booking.starts_at, Booking.id)
    else:
        query = query.order_by(Booking.starts_at.desc(), Booking.id.desc())
    return list(session.scalars(query.limit(limit)))


EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(9000, 1, 1)


def _day_bounds(first: date, last: date, field: str = "day") -> tuple[datetime, datetime]:
    """The UTC instants a span of school days starts and ends (midnight to midnight, school time)."""
    if not (EARLIEST_DAY <= first <= LATEST_DAY and EARLIEST_DAY <= last <= LATEST_DAY):
        raise ValidationFailed("Choose a day between 2000 and 9000.", {field: ["Choose a day between 2000 and 9000."]})
    return _at(first, time(0, 0)), _at(last + timedelta(days=1), time(0, 0))


def bookings_on_day(session: Session, actor: User, day: date) -> list[Booking]:
    """Every booking that touches a school day (all statuses), for the office."""
    require_office_or_admin(actor)
    start, end = _day_bounds(day, day)
    return list(
        session.scalars(
            sa.select(Booking).where(Booking.starts_at < end, Booking.ends_at > start).order_by(Booking.starts_at, Booking.id)
        )
    )


def bookings_for_asset(session: Session, asset_id: int, start: datetime, end: datetime) -> list[Booking]:
    """Bookings holding this asset (alone or in its kit) that overlap [start, end)."""
    holding = sa.select(BookingItem.booking_id).where(
        BookingItem.asset_id == asset_id, BookingItem.starts_at < end, BookingItem.ends_at > start
    )
    return list(session.scalars(sa.select(Booking).where(Booking.id.in_(holding)).order_by(Booking.starts_at, Booking.id)))


def bookings_for_kit(session: Session, kit_id: int, start: datetime, end: datetime) -> list[Booking]:
    return list(
        session.scalars(
            sa.select(Booking)
            .where(Booking.kit_id == kit_id, Booking.starts_at < end, Booking.ends_at > start)
            .order_by(Booking.starts_at, Booking.id)
        )
    )


def availability(
    session: Session, viewer: User, *, asset_id: int | None = None, kit_id: int | None = None, start: date, end: date
) -> list[Busy]:
    """When an asset (or any member of a kit) is taken between two school dates, both included. Anyone
    who may book it (or the office) may look; for anything else it does not exist."""
    if (asset_id is None) == (kit_id is None):
        message = "Give asset_id or kit_id."
        raise ValidationFailed(message, {"asset_id": [message]})
    if end < start:
        raise ValidationFailed("The end date is before the start.", {"to": ["The end date must be the start or later."]})
    if (end - start).days > 62:
        raise ValidationFailed("Ask for at most two months.", {"to": ["Ask for at most 62 days at a time."]})
    if asset_id is not None:
        asset = session.get(SchoolAsset, asset_id)
        if asset is None or not (is_office(viewer) or may_book(viewer, asset.bookable_by)):
            raise NotFound("There is no such equipment.")
        ids = [asset.id]
    else:
        kit = session.get(Kit, kit_id)
        if kit is None or not (is_office(viewer) or may_book(viewer, kit.bookable_by)):
            raise NotFound("There is no such kit.")
        ids = [m.asset_id for m in kit.members]
    first, last = _day_bounds(start, end, "to")
    return busy_times(session, ids, first, last)


def booking_json(booking: Booking) -> dict:
    return {
        "id": booking.id,
        "asset_id": booking.asset_id,
        "kit_id": booking.kit_id,
        "what": booking.thing_name,
        "booked_for": {"id": booking.booked_for_id, "name": booking.booked_for.display_name},
        "booked_by": {"id": booking.booked_by_id, "name": booking.booked_by.display_name},
        "starts_at": as_utc(booking.starts_at).isoformat(),
        "ends_at": as_utc(booking.ends_at).isoformat(),
        "periods": booking.periods,
        "purpose": booking.purpose,
        "status": booking.status,
        "cancelled_at": as_utc(booking.cancelled_at).isoformat() if booking.cancelled_at else None,
        "created_at": as_utc(booking.created_at).isoformat(),
    }


# Bookability and kits (the office and admins) ------------------------------------------------------


def _bookable_value(value: str | None) -> str | None:
    value = (value or "").strip() or None
    if value is not None and value not in {v.value for v in BookableBy}:
        message = "Choose who may book it: all staff, approvers, office only, admins only, or nobody."
        raise ValidationFailed(message, {"bookable_by": [message]})
    return value


def set_bookable(
    session: Session, actor: User, *, asset_id: int | None = None, kit_id: int | None = None, bookable_by: str | None
) -> None:
    """Say who may book an asset or a kit (None: nobody). Bookings already made stay."""
    require_office_or_admin(actor)
    value = _bookable_value(bookable_by)
    thing: SchoolAsset | Kit | None
    if asset_id is not None:
        thing = lock_asset(session, asset_id)
        related: dict[str, object] = {"asset": thing.id}
    else:
        thing = session.get(Kit, kit_id) if kit_id is not None else None
        if thing is None:
            raise NotFound("There is no such kit.")
        related = {"kit": thing.id}
    before = thing.bookable_by
    if before == value:
        return
    thing.bookable_by = value
    session.flush()
    subject = "asset" if asset_id is not None else "kit"
    record_audit_event(
        session,
        actor,
        "booking.bookable_changed",
        subject,
        thing.id,
        {"name": thing.name, "from": before or "", "to": value or ""},
        related=related,
    )


def list_kits(session: Session, *, include_retired: bool = False) -> list[Kit]:
    query = sa.select(Kit).order_by(Kit.name, Kit.id)
    if not include_retired:
        query = query.where(Kit.retired_at.is_(None))
    return list(session.scalars(query))


def get_kit(session: Session, kit_id: int) -> Kit:
    kit = session.get(Kit, kit_id)
    if kit is None:
        raise NotFound("There is no such kit.")
    return kit


def find_kit_by_tag(session: Session, tag: str) -> Kit | None:
    tag = normalise_tag(tag)
    return session.scalar(sa.select(Kit).where(Kit.tag == tag)) if tag else None


def kit_of_asset(session: Session, asset_id: int) -> Kit | None:
    return session.scalar(sa.select(Kit).join(KitMember, KitMember.kit_id == Kit.id).where(KitMember.asset_id == asset_id))


def _kit_errors(session: Session, name: str, tag: str, description: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not name:
        errors["name"] = ["Enter a name people will recognise, like iPad trolley (Year 5)."]
    elif len(name) > 120:
        errors["name"] = ["Use at most 120 characters."]
    elif session.scalar(sa.select(Kit.id).where(sa.func.lower(Kit.name) == name.lower())) is not None:
        errors["name"] = ["Another kit has this name."]
    if not tag:
        errors["tag"] = ["Enter the tag for the kit's label, like KIT-TROLLEY-1."]
    elif not TAG_PATTERN.match(tag):
        errors["tag"] = ["Use letters, digits and dashes only (up to 40), like KIT-TROLLEY-1."]
    elif find_by_tag(session, tag) is not None or find_kit_by_tag(session, tag) is not None:
        errors["tag"] = ["This tag is already on another label."]
    if len(description) > 500:
        errors["description"] = ["Use at most 500 characters."]
    return errors


def create_kit(
    session: Session, actor: User, *, name: str, tag: str, description: str = "", bookable_by: str | None = None
) -> Kit:
    require_office_or_admin(actor)
    name, tag, description = (name or "").strip(), normalise_tag(tag), (description or "").strip()
    errors = _kit_errors(session, name, tag, description)
    try:
        value = _bookable_value(bookable_by)
    except ValidationFailed as error:
        errors |= error.field_errors
        value = None
    if errors:
        raise ValidationFailed("Some details need correcting.", errors)
    kit = Kit(name=name, tag=tag, description=description, bookable_by=value)
    try:
        with session.begin_nested():
            session.add(kit)
            session.flush()
    except IntegrityError as error:
        raise ValidationFailed("Some details need correcting.", {"tag": ["This tag or name was just taken."]}) from error
    record_audit_event(session, actor, "kit.created", "kit", kit.id, {"name": kit.name, "tag": kit.tag}, related={"kit": kit.id})
    return kit


def add_kit_member(session: Session, actor: User, kit_id: int, tag: str) -> KitMember:
    """Put an asset (by its tag, typed or scanned) into a kit; it may be in no other kit."""
    require_office_or_admin(actor)
    kit = get_kit(session, kit_id)
    if kit.is_retired:
        raise Conflict(f"{kit.name} is retired.")
    asset = find_by_tag(session, tag)
    if asset is None:
        raise ValidationFailed("No equipment has that tag.", {"tag": ["No equipment has that tag; check the label."]})
    asset = lock_asset(session, asset.id)
    current = kit_of_asset(session, asset.id)
    if current is not None:
        where = "already in this kit" if current.id == kit.id else f"in {current.name}; take it out of that kit first"
        raise ValidationFailed(f"{asset.tag} is {where}.", {"tag": [f"{asset.tag} is {where}."]})
    member = KitMember(kit_id=kit.id, asset_id=asset.id)
    session.add(member)
    session.flush()
    session.refresh(kit)
    record_audit_event(
        session, actor, "kit.member_added", "kit", kit.id, {"name": kit.name, "asset_id": asset.id}, related={"asset": asset.id}
    )
    return member


def remove_kit_member(session: Session, actor: User, kit_id: int, asset_id: int) -> None:
    require_office_or_admin(actor)
    kit = get_kit(session, kit_id)
    member = session.get(KitMember, asset_id)
    if member is None or member.kit_id != kit.id:
        raise NotFound("That equipment is not in this kit.")
    session.delete(member)
    session.flush()
    session.refresh(kit)
    record_audit_event(
        session, actor, "kit.member_removed", "kit", kit.id, {"name": kit.name, "asset_id": asset_id}, related={"asset": asset_id}
    )


def retire_kit(session: Session, actor: User, kit_id: int) -> Kit:
    """Retire a kit: nobody can book it any more; its members are free to join other kits or be booked alone.
    Bookings still ahead must be cancelled first, so nobody is left expecting it."""
    require_office_or_admin(actor)
    kit = get_kit(session, kit_id)
    if kit.is_retired:
        raise Conflict(f"{kit.name} is already retired.")
    ahead = session.scalar(
        sa.select(sa.func.count())
        .select_from(Booking)
        .where(Booking.kit_id == kit.id, Booking.status.in_(OPEN), Booking.ends_at > utcnow())
    )
    if ahead:
        raise Conflict(f"{kit.name} has {ahead} booking(s) still to come; cancel them first.")
    kit.retired_at = utcnow()
    kit.members.clear()
    session.flush()
    record_audit_event(session, actor, "kit.retired", "kit", kit.id, {"name": kit.name}, related={"kit": kit.id})
    return kit
