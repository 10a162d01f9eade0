"""A week at a glance (issue 17, item 5): for an asset, a kit or a kind of equipment, which lesson periods
of each school day (Monday to Friday) are free, booked (and by whom) or on loan.

An asset's or a kit's week: two queries read every busy interval of the week (the booking items
overlapping the week, and the loans overlapping it), plus one for the assets themselves; the grid is
then worked out in Python. A kind's week (hundreds of assets) is counted by the database instead
(kind_counts, _first_free_of_kind): a few dozen rows, not every booking. A loan still out counts as on loan
until the end of its due day (or of today, when overdue).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.orm import Session

from app.clock import local_today, school_zone, utcnow
from app.database import UTCDateTime
from app.models import (
    AssetKind,
    AssetStatus,
    BookableBy,
    Booking,
    BookingItem,
    BookingStatus,
    Kit,
    KitMember,
    Loan,
    SchoolAsset,
    User,
)
from app.services.bookings import is_office, may_book
from app.services.errors import NotFound, ValidationFailed
from app.services.periods import Period, school_periods
from app.services.school_days import holiday_of, school_holidays

WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
SCHOOL_DAYS = 5
FREE, BOOKED, ON_LOAN, PARTLY, HOLIDAY = "free", "booked", "on_loan", "partly", "holiday"
STATE_LABELS = {FREE: "Free", BOOKED: "Booked", ON_LOAN: "On loan", PARTLY: "Partly free", HOLIDAY: "School holiday"}


def lesson_periods(session: Session) -> list[Period]:
    """The school's lesson periods, from the bookings setting (app/services/periods.py parses it)."""
    return school_periods(session)


# Weeks --------------------------------------------------------------------------------------------


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def parse_week(text: str | None, today: date | None = None) -> date:
    """The Monday of an ISO week written 2026-W49; empty means this week (next week at the weekend)."""
    today = today or local_today()
    if not text:
        return monday_of(today + timedelta(days=2) if today.weekday() >= SCHOOL_DAYS else today)
    found = WEEK.match(text.strip())
    try:
        if found is None:
            raise ValueError(text)
        monday = date.fromisocalendar(int(found.group(1)), int(found.group(2)), 1)
    except ValueError:
        raise ValidationFailed("Write the week like 2026-W49.", {"week": ["Write the week like 2026-W49."]}) from None
    if abs((monday - today).days) > 3 * 366:
        raise ValidationFailed(
            "Choose a week within three years of today.", {"week": ["Choose a week within three years of today."]}
        )
    return monday


def week_text(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def _at(day: date, moment: time, zone=None) -> datetime:
    return datetime.combine(day, moment, tzinfo=zone or school_zone())


# Who may see what -----------------------------------------------------------------------------------


def _visible(viewer: User, bookable_by: str | None, retired: bool) -> bool:
    return is_office(viewer) or (bookable_by is not None and not retired)


# The grid -----------------------------------------------------------------------------------------


@dataclass
class Busy:
    asset_id: int
    starts: datetime
    ends: datetime
    state: str
    who: str
    booking_id: int | None = None


@dataclass
class Cell:
    day: date
    period: Period
    state: str
    text: str
    free_ids: list[int] = field(default_factory=list)
    bookable: bool = False  # free, not over, and the viewer may book it: the cell links to the form
    url: str = ""  # the filled-in booking form, set by the page

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]


@dataclass
class DayRow:
    day: date
    cells: list[Cell]

    @property
    def weekday(self) -> str:
        return self.day.strftime("%A")


@dataclass
class WeekView:
    scope: str  # asset, kit or kind
    title: str
    subject_id: int | None
    kind: str | None
    monday: date
    periods: list[Period]
    days: list[DayRow]
    asset_count: int
    can_book: bool

    @property
    def week(self) -> str:
        return week_text(self.monday)

    @property
    def previous_week(self) -> str:
        return week_text(self.monday - timedelta(days=7))

    @property
    def next_week(self) -> str:
        return week_text(self.monday + timedelta(days=7))

    @property
    def friday(self) -> date:
        return self.monday + timedelta(days=SCHOOL_DAYS - 1)

    @property
    def has_holiday(self) -> bool:
        return any(row.cells and row.cells[0].state == HOLIDAY for row in self.days)


def busy_intervals(session: Session, asset_ids, starts: datetime, ends: datetime) -> list[Busy]:
    """Every booking and loan of these assets overlapping [starts, ends): two queries, however many assets."""
    # Plain rows through the connection: these are columns, not objects, and the ORM's loading of 1,500
    # tuples was a third of a kind's page. Nothing is written here; a flush keeps pending rows visible.
    session.flush()
    connection = session.connection()
    booked = connection.execute(
        sa.select(BookingItem.asset_id, BookingItem.starts_at, BookingItem.ends_at, User.display_name, Booking.id)
        .join(Booking, Booking.id == BookingItem.booking_id)
        .join_from(Booking, User, User.id == Booking.booked_for_id)
        .where(
            BookingItem.asset_id.in_(asset_ids),
            BookingItem.active.is_(True),
            Booking.status == BookingStatus.BOOKED.value,
            BookingItem.starts_at < ends,
            BookingItem.ends_at > starts,
        )
    ).all()
    lent = connection.execute(
        sa.select(Loan.asset_id, Loan.out_at, Loan.returned_at, Loan.due_on, User.display_name)
        .join_from(Loan, User, User.id == Loan.borrower_id)
        .where(
            Loan.asset_id.in_(asset_ids),
            Loan.out_at < ends,
            sa.or_(Loan.returned_at.is_(None), Loan.returned_at > starts),
        )
    ).all()
    return [Busy(a, s, e, BOOKED, who, booking_id) for a, s, e, who, booking_id in booked] + _loans_busy(lent)


def _loans_busy(rows) -> list[Busy]:
    """Loans as busy intervals, from rows of (asset id, out at, returned at, due on, borrower's name). A loan
    still out is busy until the end of its due day, or of today when it is overdue (as
    bookings.availability counts it, so the grid and the clash check agree)."""
    zone = school_zone()
    until_today = _at(local_today() + timedelta(days=1), time(0, 0), zone)
    return [
        Busy(a, s, e if e is not None else max(_at(due + timedelta(days=1), time(0, 0), zone), until_today), ON_LOAN, who)
        for a, s, e, due, who in rows
    ]


def _hold(holding: dict[int, Busy], busy: Busy) -> None:
    """A loan wins over a booking of the same asset in the same period."""
    current = holding.get(busy.asset_id)
    if current is None or (current.state == BOOKED and busy.state == ON_LOAN):
        holding[busy.asset_id] = busy


def _spread(intervals: list[Busy], bounds: list[tuple[float, float]]) -> list[dict[int, Busy]]:
    """Each cell's holders (per asset), with every interval put into just the cells it overlaps (found by
    bisection: the cells are in time order and do not overlap), so the work follows the intervals."""
    cells: list[dict[int, Busy]] = [{} for _ in bounds]
    cell_ends = [ends for _starts, ends in bounds]
    for busy in intervals:
        starts, ends = busy.starts.timestamp(), busy.ends.timestamp()
        index = bisect_right(cell_ends, starts)
        while index < len(bounds) and bounds[index][0] < ends:
            _hold(cells[index], busy)
            index += 1
    return cells


def _describe(scope: str, total: int, holding: dict[int, Busy]) -> tuple[str, str]:
    free = total - len(holding)
    if free == total:
        return FREE, "Free" if scope != "kind" else f"{free} of {total} free"
    if free:
        return PARTLY, f"{free} of {total} free"
    booked = [b for b in holding.values() if b.state == BOOKED]
    lent = len(holding) - len(booked)
    if scope == "kind":
        return (ON_LOAN, "All on loan") if not booked else (BOOKED, "None free")
    held = booked or list(holding.values())
    people = sorted({b.who for b in held})
    who = people[0] if len(people) == 1 else f"{len(people)} people"
    if not booked:
        return ON_LOAN, f"On loan to {who}"
    return BOOKED, f"Booked by {who}" + (f" ({lent} on loan)" if lent else "")


def _first_free(asset_ids: list[int], holding: dict[int, Busy]) -> list[int]:
    return next(([a] for a in asset_ids if a not in holding), [])


def _slots(session: Session, monday: date) -> tuple[list[Period], list[date], list[tuple[date, Period, datetime, datetime]]]:
    periods = lesson_periods(session)
    days = [monday + timedelta(days=offset) for offset in range(SCHOOL_DAYS)]
    zone = school_zone()
    slots = [(day, period, _at(day, period.starts, zone), _at(day, period.ends, zone)) for day in days for period in periods]
    return periods, days, slots


def _view(scope: str, title: str, monday: date, periods, days, cells: list[Cell], *, total: int, can_book: bool, **subject):
    """The grid in rows of days; a day in a school holiday (the settings page lists them) says so in every
    period and offers nothing to book, as the booking form would refuse it."""
    holidays = subject.pop("holidays")
    for cell in cells:
        if holiday_of(cell.day, holidays) is not None:
            cell.state, cell.text, cell.free_ids, cell.bookable = HOLIDAY, "School holiday", [], False
    rows = [DayRow(day, cells[n * len(periods) : (n + 1) * len(periods)]) for n, day in enumerate(days)]
    return WeekView(
        scope=scope,
        title=title,
        subject_id=subject.get("subject_id"),
        kind=subject.get("kind"),
        monday=monday,
        periods=periods,
        days=rows,
        asset_count=total,
        can_book=can_book,
    )


def build_week(
    session: Session, viewer: User, *, scope: str, title: str, asset_ids: list[int], monday: date, can_book: bool, **subject
) -> WeekView:
    """An asset's or a kit's week: each busy interval read and spread into the cells it overlaps, so a cell
    can say who has it."""
    periods, days, slots = _slots(session, monday)
    zone = school_zone()
    bounds = [(starts.timestamp(), ends.timestamp()) for _day, _period, starts, ends in slots]
    week_start, week_end = _at(monday, time(0, 0), zone), _at(monday + timedelta(days=SCHOOL_DAYS), time(0, 0), zone)
    intervals = busy_intervals(session, asset_ids, week_start, week_end) if asset_ids else []
    holders = _spread(intervals, bounds)
    now, total = utcnow().timestamp(), len(asset_ids)
    cells = []
    for (day, period, _starts, _ends), (_, ends), holding in zip(slots, bounds, holders, strict=True):
        state, text = _describe(scope, total, holding)
        free = _first_free(asset_ids, holding) if total > len(holding) else []
        cells.append(Cell(day, period, state, text, free, bool(free) and can_book and ends > now))
    holidays = school_holidays(session)
    return _view(scope, title, monday, periods, days, cells, total=total, can_book=can_book, holidays=holidays, **subject)


# A kind's week: counted in the database ---------------------------------------------------------------


_FIRST_FREE_SQL: dict[int, sa.TextClause] = {}


def _first_free_statement(count: int) -> sa.TextClause:
    """The first-free search for ``count`` periods, built once per period count. Written as text: the same
    statement in SQLAlchemy's expression language cost more to build and key for its cache on every request
    than the database took to run it."""
    statement = _FIRST_FREE_SQL.get(count)
    if statement is None:
        rows = ", ".join(f"(:n{i}, :s{i}, :e{i}, :d{i}, :t{i})" for i in range(count))
        statement = sa.text(
            f"WITH slot(n, starts, ends, day, today) AS (VALUES {rows}) "  # noqa: S608  (numbered placeholders only)
            "SELECT slot.n, (SELECT a.id FROM school_assets a"
            " WHERE a.kind = :kind AND a.bookable_by IN :allowed AND a.status != :retired"
            " AND NOT EXISTS (SELECT 1 FROM booking_items bi JOIN bookings b ON b.id = bi.booking_id"
            "  WHERE bi.asset_id = a.id AND bi.active = :yes AND b.status = :booked"
            "  AND bi.starts_at < slot.ends AND bi.ends_at > slot.starts)"
            " AND NOT EXISTS (SELECT 1 FROM loans l WHERE l.asset_id = a.id AND l.out_at < slot.ends"
            "  AND (l.returned_at > slot.starts OR (l.returned_at IS NULL AND (slot.today = :yes OR l.due_on >= slot.day))))"
            " ORDER BY a.id LIMIT 1),"
            " (SELECT count(*) FROM school_assets a"
            "  WHERE a.kind = :kind AND a.bookable_by IN :allowed AND a.status != :retired)"
            " FROM slot ORDER BY slot.n"
        ).bindparams(
            sa.bindparam("allowed", expanding=True),
            sa.bindparam("yes", type_=sa.Boolean),
            *[
                parameter
                for i in range(count)
                for parameter in (
                    sa.bindparam(f"n{i}", type_=sa.Integer),
                    sa.bindparam(f"s{i}", type_=UTCDateTime),
                    sa.bindparam(f"e{i}", type_=UTCDateTime),
                    sa.bindparam(f"d{i}", type_=sa.Date),
                    sa.bindparam(f"t{i}", type_=sa.Boolean),
                )
            ],
        )
        _FIRST_FREE_SQL[count] = statement
    return statement


def _first_free_of_kind(session: Session, kind: str, allowed: list[str], slots) -> tuple[int, list[int | None]]:
    """How many bookable assets of ``kind`` (bookable by ``allowed``) there are, and for each slot the lowest
    id among them free for the whole slot, or None: one statement, each slot's search stopping at its first
    free asset.
    Busy means what busy_intervals says: an active booking item of a booking still booked, or a loan out
    during the slot (a loan still out is busy until the end of its due day, or of today when overdue)."""
    until_today = _at(local_today() + timedelta(days=1), time(0, 0))
    values: dict[str, object] = {
        "kind": kind,
        "allowed": allowed,
        "retired": AssetStatus.RETIRED.value,
        "yes": True,
        "booked": BookingStatus.BOOKED.value,
    }
    for i, (day, _period, starts, ends) in enumerate(slots):
        values.update({f"n{i}": i, f"s{i}": starts, f"e{i}": ends, f"d{i}": day, f"t{i}": starts < until_today})
    session.flush()
    rows = session.connection().execute(_first_free_statement(len(slots)), values).all()
    return (rows[0][2] if rows else 0), [free for _n, free, _total in rows]


def kind_counts(session: Session, among: sa.Select, slots, week_start: datetime, week_end: datetime) -> list[tuple[int, int]]:
    """For each slot, in order: how many of the assets selected by ``among`` are busy (booked or on loan)
    and how many of those are on loan. Two statements, whatever the number of assets and bookings.

    The loans of the week are read one by one (they are few). Bookings of the other assets are counted by
    the database, grouped by their exact times (lessons make a few dozen groups however many bookings), and
    the groups are added up per period: an asset's active bookings never overlap, so two groups count one
    asset twice only when both cover just part of the period; then, rarely, every booking is read one by
    one instead. The lent assets' bookings are read one by one, so a booked asset also on loan counts once.
    """
    session.flush()
    connection = session.connection()
    lent = _loans_busy(
        connection.execute(
            sa.select(Loan.asset_id, Loan.out_at, Loan.returned_at, Loan.due_on, sa.literal("")).where(
                Loan.asset_id.in_(among),
                Loan.out_at < week_end,
                sa.or_(Loan.returned_at.is_(None), Loan.returned_at > week_start),
            )
        ).all()
    )
    lent_ids = sorted({busy.asset_id for busy in lent})
    in_the_week = (
        BookingItem.asset_id.in_(among),
        BookingItem.active.is_(True),
        Booking.status == BookingStatus.BOOKED.value,
        BookingItem.starts_at < week_end,
        BookingItem.ends_at > week_start,
    )
    rows: Sequence[sa.Row[Any]] = connection.execute(
        sa.union_all(
            sa.select(BookingItem.starts_at, BookingItem.ends_at, sa.func.count(), sa.null().label("asset_id"))
            .join(Booking, Booking.id == BookingItem.booking_id)
            .where(*in_the_week, BookingItem.asset_id.not_in(lent_ids))
            .group_by(BookingItem.starts_at, BookingItem.ends_at),
            sa.select(BookingItem.starts_at, BookingItem.ends_at, sa.literal(1), BookingItem.asset_id)
            .join(Booking, Booking.id == BookingItem.booking_id)
            .where(*in_the_week, BookingItem.asset_id.in_(lent_ids)),
        )
    ).all()
    bounds = [(starts.timestamp(), ends.timestamp()) for _day, _period, starts, ends in slots]
    booked = [0] * len(slots)
    partial = [0] * len(slots)
    cell_ends = [ends for _starts, ends in bounds]
    one_by_one = list(lent)
    for starts_at, ends_at, count, asset_id in rows:  # aware datetimes: the union's columns are UTCDateTime
        if asset_id is not None:
            one_by_one.append(Busy(asset_id, starts_at, ends_at, BOOKED, ""))
            continue
        starts, ends = starts_at.timestamp(), ends_at.timestamp()
        index = bisect_right(cell_ends, starts)
        while index < len(bounds) and bounds[index][0] < ends:
            booked[index] += count
            partial[index] += starts > bounds[index][0] or ends < bounds[index][1]
            index += 1
    if any(n > 1 for n in partial):  # one asset may hold two parts of a period: count assets, not bookings
        holders = _spread(busy_intervals(session, among, week_start, week_end), bounds)
        return [(len(h), sum(b.state == ON_LOAN for b in h.values())) for h in holders]
    holders = _spread(one_by_one, bounds)
    return [(n + len(h), sum(b.state == ON_LOAN for b in h.values())) for n, h in zip(booked, holders, strict=True)]


def _kind_cell(total: int, busy: int, lent: int) -> tuple[str, str]:
    free = total - busy
    if free == total:
        return FREE, f"{free} of {total} free"
    if free:
        return PARTLY, f"{free} of {total} free"
    return (ON_LOAN, "All on loan") if busy == lent else (BOOKED, "None free")


def asset_week(session: Session, viewer: User, asset_id: int, monday: date) -> WeekView:
    """One asset's week. Staff see bookable assets only; anything else is no such asset to them."""
    asset = session.get(SchoolAsset, asset_id)
    if asset is None or not _visible(viewer, asset.bookable_by, asset.status == AssetStatus.RETIRED.value):
        raise NotFound("There is no such bookable equipment.")
    return build_week(
        session,
        viewer,
        scope="asset",
        title=f"{asset.name} ({asset.tag})",
        asset_ids=[asset.id],
        monday=monday,
        can_book=may_book(viewer, asset.bookable_by) and asset.status != AssetStatus.RETIRED.value,
        subject_id=asset.id,
    )


def kit_week(session: Session, viewer: User, kit_id: int, monday: date) -> WeekView:
    """A kit's week: free only where every member is free."""
    kit = session.get(Kit, kit_id)
    if kit is None or not _visible(viewer, kit.bookable_by, kit.is_retired):
        raise NotFound("There is no such bookable kit.")
    ids = list(session.scalars(sa.select(KitMember.asset_id).where(KitMember.kit_id == kit.id).order_by(KitMember.asset_id)))
    return build_week(
        session,
        viewer,
        scope="kit",
        title=f"{kit.name} ({kit.tag}, {len(ids)} items)",
        asset_ids=ids,
        monday=monday,
        can_book=may_book(viewer, kit.bookable_by) and not kit.is_retired and bool(ids),
        subject_id=kit.id,
    )


def _bookable_kind(kind: str) -> sa.Select:
    return (
        sa.select(SchoolAsset.id)
        .where(
            SchoolAsset.kind == kind,
            SchoolAsset.bookable_by.is_not(None),
            SchoolAsset.status != AssetStatus.RETIRED.value,
        )
        .order_by(SchoolAsset.id)
    )


def kind_week(session: Session, viewer: User, kind: str, monday: date) -> WeekView:
    """Every bookable asset of one kind (cameras, tablets...): how many are free in each period, and the
    first free one to book. Counted by the database: the statements and the rows read do not grow with the
    number of assets or bookings."""
    if kind not in {k.value for k in AssetKind}:
        raise NotFound("There is no such kind of equipment.")
    allowed = [value.value for value in BookableBy if may_book(viewer, value.value)]
    among = _bookable_kind(kind).where(SchoolAsset.bookable_by.in_(allowed)).order_by(None)
    periods, days, slots = _slots(session, monday)
    if slots:
        total, firsts = _first_free_of_kind(session, kind, allowed, slots)
    else:
        total = session.scalar(sa.select(sa.func.count()).select_from(among.subquery())) or 0
        firsts = []
    zone = school_zone()
    week_start, week_end = _at(monday, time(0, 0), zone), _at(monday + timedelta(days=SCHOOL_DAYS), time(0, 0), zone)
    counts = kind_counts(session, among, slots, week_start, week_end) if total and slots else [(0, 0)] * len(slots)
    now = utcnow()
    cells = []
    for (day, period, _starts, ends), (busy, lent), first in zip(slots, counts, firsts, strict=True):
        state, text = _kind_cell(total, busy, lent)
        free = [first] if first is not None else []
        cells.append(Cell(day, period, state, text, free, bool(free) and ends > now))
    title = f"Every bookable {AssetKind(kind).label.lower()}"
    holidays = school_holidays(session)
    return _view("kind", title, monday, periods, days, cells, total=total, can_book=total > 0, kind=kind, holidays=holidays)


def week_json(view: WeekView) -> dict:
    """The week as the API gives it."""
    return {
        "scope": view.scope,
        "title": view.title,
        "week": view.week,
        "monday": view.monday.isoformat(),
        "asset_count": view.asset_count,
        "periods": [
            {"label": p.label, "starts": p.starts.strftime("%H:%M"), "ends": p.ends.strftime("%H:%M")} for p in view.periods
        ],
        "days": [
            {
                "date": row.day.isoformat(),
                "slots": [
                    {"period": cell.period.label, "state": cell.state, "text": cell.text, "free": len(cell.free_ids) > 0}
                    for cell in row.cells
                ],
            }
            for row in view.days
        ],
    }


@dataclass
class WeekChoices:
    assets: list[SchoolAsset]
    kits: list[Kit]
    kinds: list[tuple[AssetKind, int]]


CHOICES_SHOWN = 300


def week_choices(session: Session, viewer: User) -> WeekChoices:
    """The bookable kits, assets and kinds whose week may be looked at (three queries)."""
    del viewer  # everyone signed in may look at anything bookable
    bookable = sa.and_(SchoolAsset.bookable_by.is_not(None), SchoolAsset.status != AssetStatus.RETIRED.value)
    assets = list(
        session.scalars(
            sa.select(SchoolAsset)
            .options(so.lazyload(SchoolAsset.imei_row))
            .where(bookable, ~SchoolAsset.id.in_(sa.select(KitMember.asset_id)))
            .order_by(SchoolAsset.name, SchoolAsset.tag)
            .limit(CHOICES_SHOWN)
        )
    )
    kits = list(
        session.scalars(
            sa.select(Kit)
            .options(so.lazyload(Kit.members))
            .where(Kit.bookable_by.is_not(None), Kit.retired_at.is_(None))
            .order_by(Kit.name)
        )
    )
    counts = session.execute(sa.select(SchoolAsset.kind, sa.func.count()).where(bookable).group_by(SchoolAsset.kind)).all()
    by_kind: dict[str, int] = {kind: count for kind, count in counts}
    return WeekChoices(assets, kits, [(kind, by_kind[kind.value]) for kind in AssetKind if by_kind.get(kind.value)])
