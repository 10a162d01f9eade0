"""Reports for governors and the head: permissions by month and by area, loans and losses, policy acceptance.

Every figure is a count: no report here names a person, so governors (who read the audit log but hold no
operational role) can see them all, and the CSV exports of them are not reads of personal data.

Months and weeks are the school's (``app.clock.school_zone``): their boundaries are computed here in
Python, in the school's zone, and turned into UTC instants. The queries bucket rows with a ``CASE`` over
those instants and ``GROUP BY`` the bucket, which SQLite and PostgreSQL run alike (no ``strftime`` nor
``date_trunc``, which would bucket by UTC and put 00:30 BST on 1 April into March). Each report runs a
fixed number of statements, however many months or areas it covers.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import local_today, school_zone, to_local
from app.models import (
    Area,
    DeviceStatus,
    Loan,
    NoDeviceDeclaration,
    PermissionRequest,
    PersonalDevice,
    PolicyAcceptance,
    PolicyVersion,
    StaffType,
    StockTake,
    StockTakeOutcome,
    StockTakeResult,
    User,
)
from app.services.csv_safe import csv_lines
from app.services.errors import ValidationFailed

DEFAULT_MONTHS = 12
MAX_MONTHS = 36
MAX_WEEKS = 52
REVIEW_WITHIN = timedelta(hours=24)
_MONTH_ISO = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")
_MONTH_UK = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{4})\s*$")


# Periods ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    """A school month or week: its first day and its bounds as UTC instants (start included, end not)."""

    first_day: date
    start: datetime
    end: datetime
    label: str
    long_label: str


def _midnight(day: date) -> datetime:
    """The start of a school day as a UTC instant (midnight in the school's zone, BST or GMT)."""
    return datetime(day.year, day.month, day.day, tzinfo=school_zone()).astimezone(UTC)


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def month_bucket(first_day: date) -> Bucket:
    return Bucket(
        first_day,
        _midnight(first_day),
        _midnight(_next_month(first_day)),
        first_day.strftime("%b %Y"),
        first_day.strftime("%B %Y"),
    )


def week_bucket(monday: date) -> Bucket:
    return Bucket(
        monday,
        _midnight(monday),
        _midnight(monday + timedelta(days=7)),
        monday.strftime("%d/%m"),
        f"week of {monday:%d/%m/%Y}",
    )


@dataclass(frozen=True)
class Period:
    """Whole school months, from ``months[0]`` to ``months[-1]``."""

    months: tuple[Bucket, ...]

    @property
    def start(self) -> datetime:
        return self.months[0].start

    @property
    def end(self) -> datetime:
        return self.months[-1].end

    @property
    def label(self) -> str:
        first, last = self.months[0].long_label, self.months[-1].long_label
        return first if first == last else f"{first} to {last}"

    @property
    def slug(self) -> str:
        """For file names: 2026-01-to-2026-12."""
        return f"{self.months[0].first_day:%Y-%m}-to-{self.months[-1].first_day:%Y-%m}"

    @property
    def from_value(self) -> str:
        """The first month as the form shows it: 09/2026."""
        return f"{self.months[0].first_day:%m/%Y}"

    @property
    def to_value(self) -> str:
        return f"{self.months[-1].first_day:%m/%Y}"


def period_of(first: date, last: date) -> Period:
    months: list[Bucket] = []
    day = date(first.year, first.month, 1)
    while day <= last:
        months.append(month_bucket(day))
        day = _next_month(day)
    return Period(tuple(months))


def default_period(today: date | None = None) -> Period:
    """The last twelve school months, this one included."""
    today = today or local_today()
    last = date(today.year, today.month, 1)
    first = last
    for _ in range(DEFAULT_MONTHS - 1):
        first = date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
    return period_of(first, last)


def _parse_month(text: str) -> date | None:
    match = _MONTH_ISO.match(text) or _MONTH_UK.match(text)
    if match is None:
        return None
    a, b = (int(g) for g in match.groups())
    year, month = (a, b) if match.re is _MONTH_ISO else (b, a)
    if not 1 <= month <= 12 or not 2000 <= year <= 2999:
        return None
    return date(year, month, 1)


def parse_period(from_text: str, to_text: str, today: date | None = None) -> Period:
    """The months asked for (``01/2026``, or ``2026-01`` as a month field sends it); both empty: the last
    twelve. Raises ``ValidationFailed`` naming ``from_month``/``to_month`` with what is wrong."""
    today = today or local_today()
    if not (from_text or "").strip() and not (to_text or "").strip():
        return default_period(today)
    this_month = date(today.year, today.month, 1)
    errors: dict[str, list[str]] = {}
    first = _parse_month(from_text or "")
    last = _parse_month(to_text or "") if (to_text or "").strip() else this_month
    if first is None:
        errors["from_month"] = ["Enter the first month as MM/YYYY, like 09/2026."]
    elif first > this_month:
        errors["from_month"] = ["The first month cannot be after this month."]
    if last is None:
        errors["to_month"] = ["Enter the last month as MM/YYYY, like 07/2027."]
    elif last > this_month:
        errors["to_month"] = ["The last month cannot be after this month."]
    if first and last and not errors:
        span = (last.year - first.year) * 12 + last.month - first.month + 1
        if span < 1:
            errors["to_month"] = ["The last month must be the same as the first month or after it."]
        elif span > MAX_MONTHS:
            errors["to_month"] = [f"Choose at most {MAX_MONTHS} months (three years)."]
    if errors or first is None or last is None:
        raise ValidationFailed("The period needs correcting.", errors)
    return period_of(first, last)


def _bucket_of(column, buckets: Sequence[Bucket]):
    """A CASE giving each row the index of its bucket (the caller's WHERE keeps rows inside them)."""
    return sa.case(*[(column < bucket.end, index) for index, bucket in enumerate(buckets)], else_=None)


def _index_of(moment: datetime, buckets: Sequence[Bucket]) -> int | None:
    for index, bucket in enumerate(buckets):
        if bucket.start <= moment < bucket.end:
            return index
    return None


def _count(condition) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


# Permissions -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PermissionFigures:
    """One month's or one area's requests. Approved includes those a standing permission approved at once;
    overrides are counted apart from the other outcomes."""

    requests: int = 0
    approved: int = 0
    standing: int = 0
    denied: int = 0
    withdrawn_or_expired: int = 0
    pending: int = 0
    overrides: int = 0
    reviewed: int = 0
    reviewed_in_time: int = 0

    def __add__(self, other: PermissionFigures) -> PermissionFigures:
        return PermissionFigures(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass(frozen=True)
class PermissionReport:
    period: Period
    by_month: list[tuple[Bucket, PermissionFigures]]
    by_area: list[tuple[str, PermissionFigures]]

    @property
    def total(self) -> PermissionFigures:
        return sum((figures for _, figures in self.by_month), PermissionFigures())


def permission_report(session: Session, period: Period) -> PermissionReport:
    """Requests made in the period, by school month and by area (three statements)."""
    pr = PermissionRequest
    in_period = sa.and_(pr.created_at >= period.start, pr.created_at < period.end)
    decided = sa.and_(pr.approved_until.is_not(None), pr.emergency.is_(False))
    rows = sa.select(
        _bucket_of(pr.created_at, period.months).label("bucket"),
        pr.area_id.label("area_id"),
        decided.label("approved"),
        sa.and_(decided, pr.standing_permission_id.is_not(None)).label("standing"),
        (pr.status == "denied").label("denied"),
        sa.and_(pr.status.in_(("withdrawn", "expired")), pr.approved_until.is_(None)).label("withdrawn_or_expired"),
        (pr.status == "pending").label("pending"),
        pr.emergency.label("override"),
        sa.and_(pr.emergency.is_(True), pr.reviewed_at.is_not(None)).label("reviewed"),
    ).where(in_period)
    sub = rows.subquery()
    counted = session.execute(
        sa.select(
            sub.c.bucket,
            sub.c.area_id,
            sa.func.count(),
            *(_count(sub.c[name].is_(True)) for name in ("approved", "standing", "denied", "withdrawn_or_expired", "pending")),
            _count(sub.c.override.is_(True)),
            _count(sub.c.reviewed.is_(True)),
        ).group_by(sub.c.bucket, sub.c.area_id)
    ).all()
    in_time: dict[tuple[int, int], int] = defaultdict(int)
    for area_id, created_at, reviewed_at in session.execute(
        sa.select(pr.area_id, pr.created_at, pr.reviewed_at).where(in_period, pr.emergency.is_(True), pr.reviewed_at.is_not(None))
    ):
        index = _index_of(created_at, period.months)
        if index is not None and reviewed_at - created_at <= REVIEW_WITHIN:
            in_time[(index, area_id)] += 1
    areas = session.execute(sa.select(Area.id, Area.name).order_by(Area.name)).all()
    by_month = [PermissionFigures() for _ in period.months]
    by_area = {area_id: PermissionFigures() for area_id, _ in areas}
    for bucket, area_id, *counts in counted:
        requests, approved, standing, denied, withdrawn, pending, overrides, reviewed = (int(c) for c in counts)
        figures = PermissionFigures(
            requests, approved, standing, denied, withdrawn, pending, overrides, reviewed, in_time[(bucket, area_id)]
        )
        by_month[bucket] += figures
        by_area[area_id] = by_area.get(area_id, PermissionFigures()) + figures
    return PermissionReport(
        period,
        list(zip(period.months, by_month, strict=True)),
        [(name, by_area[area_id]) for area_id, name in areas],
    )


# Loans and losses ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoanFigures:
    made: int = 0
    returned: int = 0
    returned_late: int = 0
    overdue_now: int = 0
    missing_at_stocktake: int = 0
    personal_reported: int = 0

    def __add__(self, other: LoanFigures) -> LoanFigures:
        return LoanFigures(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass(frozen=True)
class LoanReport:
    period: Period
    by_month: list[tuple[Bucket, LoanFigures]]
    overdue_now: int

    @property
    def total(self) -> LoanFigures:
        return sum((figures for _, figures in self.by_month), LoanFigures())


def _grouped(session: Session, bucket, *columns, where) -> dict[int, tuple[int, ...]]:
    """``{bucket index: counts}`` for rows matching ``where``, grouped by ``bucket`` (through a subquery,
    so PostgreSQL sees the same CASE in SELECT and GROUP BY)."""
    sub = sa.select(bucket.label("bucket"), *(c.label(f"c{i}") for i, c in enumerate(columns))).where(*where).subquery()
    counts = [_count(sub.c[f"c{i}"].is_(True)) for i in range(len(columns))]
    return {
        row[0]: tuple(int(c) for c in row[1:])
        for row in session.execute(sa.select(sub.c.bucket, sa.func.count(), *counts).group_by(sub.c.bucket))
    }


def loan_report(session: Session, period: Period, today: date | None = None) -> LoanReport:
    """Loans made, returned (late or not), still out and overdue, assets missing at stock-takes and personal
    devices reported lost or stolen, by school month (five statements)."""
    today = today or local_today()
    months = period.months
    made = _grouped(
        session,
        _bucket_of(Loan.out_at, months),
        sa.and_(Loan.returned_at.is_(None), Loan.due_on < today),
        where=(Loan.out_at >= period.start, Loan.out_at < period.end),
    )
    returned: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    # Late means returned after the due date as a school date: the zone is applied here, row by row.
    for returned_at, due_on in session.execute(
        sa.select(Loan.returned_at, Loan.due_on).where(Loan.returned_at >= period.start, Loan.returned_at < period.end)
    ):
        index = _index_of(returned_at, months)
        if index is not None:
            returned[index][0] += 1
            returned[index][1] += to_local(returned_at).date() > due_on
    missing = _grouped(
        session,
        _bucket_of(StockTake.closed_at, months),
        where=(
            StockTake.closed_at >= period.start,
            StockTake.closed_at < period.end,
            StockTakeResult.stocktake_id == StockTake.id,
            StockTakeResult.outcome == StockTakeOutcome.MISSING.value,
        ),
    )
    reported = _grouped(
        session,
        _bucket_of(PersonalDevice.reported_at, months),
        where=(PersonalDevice.reported_at >= period.start, PersonalDevice.reported_at < period.end),
    )
    overdue_now = session.scalar(sa.select(sa.func.count()).where(Loan.returned_at.is_(None), Loan.due_on < today)) or 0
    by_month = [
        LoanFigures(
            made=made.get(i, (0, 0))[0],
            returned=returned[i][0] if i in returned else 0,
            returned_late=returned[i][1] if i in returned else 0,
            overdue_now=made.get(i, (0, 0))[1],
            missing_at_stocktake=missing.get(i, (0,))[0],
            personal_reported=reported.get(i, (0,))[0],
        )
        for i in range(len(months))
    ]
    return LoanReport(period, list(zip(months, by_month, strict=True)), int(overdue_now))


# Policy acceptance -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffTypeFigures:
    label: str
    accepted: int
    not_accepted: int

    @property
    def people(self) -> int:
        return self.accepted + self.not_accepted


@dataclass(frozen=True)
class PolicyReport:
    policy: PolicyVersion | None
    by_type: list[StaffTypeFigures] = field(default_factory=list)
    weeks: list[tuple[Bucket, int]] = field(default_factory=list)
    accepted_before_weeks: int = 0
    phones_registered: int = 0
    declared_none: int = 0
    neither: int = 0

    @property
    def accepted(self) -> int:
        return sum(t.accepted for t in self.by_type)

    @property
    def not_accepted(self) -> int:
        return sum(t.not_accepted for t in self.by_type)

    @property
    def people(self) -> int:
        return self.accepted + self.not_accepted


def _weeks_since(published_at: datetime, today: date) -> list[Bucket]:
    published = to_local(published_at).date()
    monday = published - timedelta(days=published.weekday())
    this_monday = today - timedelta(days=today.weekday())
    count = min((this_monday - monday).days // 7 + 1, MAX_WEEKS)
    return [week_bucket(this_monday - timedelta(weeks=count - 1 - i)) for i in range(count)]


def _phones(session: Session) -> tuple[int, int, int]:
    has_phone = sa.exists().where(PersonalDevice.owner_id == User.id, PersonalDevice.status == DeviceStatus.ACTIVE.value)
    declared = sa.exists().where(NoDeviceDeclaration.user_id == User.id)
    row = session.execute(
        sa.select(sa.func.count(), _count(has_phone), _count(sa.and_(~has_phone, declared))).where(
            User.is_active_account.is_(True)
        )
    ).one()
    total, registered, declared_none = (int(v) for v in row)
    return registered, declared_none, total - registered - declared_none


def policy_report(session: Session, today: date | None = None) -> PolicyReport:
    """The current version's acceptance among active people, by staff type and by week since it was
    published, and how many have a phone registered or have declared they bring none (five statements)."""
    today = today or local_today()
    version = session.scalar(sa.select(PolicyVersion).order_by(PolicyVersion.id.desc()).limit(1))
    registered, declared_none, neither = _phones(session)
    if version is None:
        return PolicyReport(None, phones_registered=registered, declared_none=declared_none, neither=neither)
    accepted_ids = sa.select(PolicyAcceptance.user_id).where(PolicyAcceptance.policy_id == version.id)
    counts = {
        staff_type: (int(people), int(accepted))
        for staff_type, people, accepted in session.execute(
            sa.select(User.staff_type, sa.func.count(), _count(User.id.in_(accepted_ids)))
            .where(User.is_active_account.is_(True))
            .group_by(User.staff_type)
        )
    }
    by_type = [
        StaffTypeFigures(kind.label, counts.get(kind.value, (0, 0))[1], counts[kind.value][0] - counts[kind.value][1])
        for kind in StaffType
        if kind.value in counts
    ]
    weeks = _weeks_since(version.published_at, today)
    in_weeks = _grouped(
        session,
        _bucket_of(PolicyAcceptance.accepted_at, weeks),
        where=(
            PolicyAcceptance.policy_id == version.id,
            PolicyAcceptance.accepted_at >= weeks[0].start,
            PolicyAcceptance.accepted_at < weeks[-1].end,
            PolicyAcceptance.user_id == User.id,
            User.is_active_account.is_(True),
        ),
    )
    weekly = [(week, in_weeks.get(i, (0,))[0]) for i, week in enumerate(weeks)]
    accepted = sum(t.accepted for t in by_type)
    return PolicyReport(
        version,
        by_type,
        weekly,
        accepted - sum(n for _, n in weekly),
        registered,
        declared_none,
        neither,
    )


# CSV exports (counts only: no names, so no read of personal data to audit) ------------------------------

PERMISSION_COLUMNS = (
    "by",
    "month_or_area",
    "requests",
    "approved",
    "approved_by_standing_permission",
    "denied",
    "withdrawn_or_expired",
    "waiting",
    "emergency_overrides",
    "overrides_reviewed",
    "overrides_reviewed_within_24h",
)


def _permission_cells(figures: PermissionFigures) -> list[int]:
    return [
        figures.requests,
        figures.approved,
        figures.standing,
        figures.denied,
        figures.withdrawn_or_expired,
        figures.pending,
        figures.overrides,
        figures.reviewed,
        figures.reviewed_in_time,
    ]


def permission_csv(report: PermissionReport) -> Iterator[str]:
    rows = [["month", bucket.first_day.strftime("%Y-%m"), *_permission_cells(f)] for bucket, f in report.by_month]
    rows += [["area", name, *_permission_cells(f)] for name, f in report.by_area]
    rows.append(["total", report.period.label, *_permission_cells(report.total)])
    return csv_lines(PERMISSION_COLUMNS, rows)


def loan_csv(report: LoanReport) -> Iterator[str]:
    columns = (
        "month",
        "loans_made",
        "returned",
        "returned_late",
        "made_this_month_overdue_now",
        "assets_missing_at_stocktakes",
        "personal_devices_reported_lost_or_stolen",
    )
    rows: list[list[object]] = [
        [
            bucket.first_day.strftime("%Y-%m"),
            f.made,
            f.returned,
            f.returned_late,
            f.overdue_now,
            f.missing_at_stocktake,
            f.personal_reported,
        ]
        for bucket, f in report.by_month
    ]
    t = report.total
    rows.append(["total", t.made, t.returned, t.returned_late, report.overdue_now, t.missing_at_stocktake, t.personal_reported])
    return csv_lines(columns, rows)


def policy_csv(report: PolicyReport) -> Iterator[str]:
    rows: list[list[object]] = []
    if report.policy is not None:
        rows.append(["policy", "version", report.policy.label, ""])
        rows += [["staff_type", t.label, t.accepted, t.not_accepted] for t in report.by_type]
        rows.append(["staff_type", "All", report.accepted, report.not_accepted])
        rows += [["week", week.first_day.isoformat(), count, ""] for week, count in report.weeks]
        if report.accepted_before_weeks:
            rows.append(["week", "earlier", report.accepted_before_weeks, ""])
    rows += [
        ["phones", "registered", report.phones_registered, ""],
        ["phones", "declared_none", report.declared_none, ""],
        ["phones", "neither", report.neither, ""],
    ]
    return csv_lines(("by", "label", "accepted_or_count", "not_accepted"), rows)
