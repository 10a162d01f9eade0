"""Stock-takes: scan every label in a place, then close it to see what is present, missing, on loan
or unexpected (journey J4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.database import lock_for_append
from app.models import AssetStatus, Loan, SchoolAsset, StockTake, StockTakeOutcome, StockTakeResult, StockTakeScan, User
from app.services.assets import TAG_PATTERN, normalise_tag, require_office
from app.services.audit import record_audit_event
from app.services.errors import Conflict, NotFound, ValidationFailed

STOCKTAKE_LOCK = 7_005_002
# Assets that should be on the shelf or out on loan; lost, in-repair and retired ones are not looked for.
EXPECTED_STATUSES = (AssetStatus.AVAILABLE.value, AssetStatus.ON_LOAN.value)


def open_stocktake(session: Session) -> StockTake | None:
    return session.scalar(sa.select(StockTake).where(StockTake.closed_at.is_(None)).order_by(StockTake.id.desc()).limit(1))


def get_stocktake(session: Session, stocktake_id: int) -> StockTake:
    take = session.get(StockTake, stocktake_id)
    if take is None:
        raise NotFound("There is no such stock-take.")
    return take


def recent_stocktakes(session: Session, limit: int = 20) -> list[StockTake]:
    return list(session.scalars(sa.select(StockTake).order_by(StockTake.id.desc()).limit(limit)))


def start_stocktake(session: Session, actor: User, location: str = "") -> StockTake:
    """Open a stock-take of one location, or of every location when ``location`` is empty.

    One stock-take is open at a time, so a scanned label always knows where to go.
    """
    require_office(actor)
    location = (location or "").strip()
    if len(location) > 80:
        raise ValidationFailed("Some details need correcting.", {"location": ["Use at most 80 characters."]})
    if location and session.scalar(sa.select(SchoolAsset.id).where(SchoolAsset.home_location == location).limit(1)) is None:
        raise ValidationFailed("Some details need correcting.", {"location": [f"No asset has {location} as its home."]})
    lock_for_append(session, STOCKTAKE_LOCK)
    if (current := open_stocktake(session)) is not None:
        raise Conflict(f"Stock-take #{current.id} ({current.scope_label}) is still open. Close it before starting another.")
    take = StockTake(location=location, started_by_id=actor.id, started_at=utcnow())
    session.add(take)
    session.flush()
    record_audit_event(session, actor, "stocktake.started", "stocktake", take.id, {"location": location})
    return take


def _lock_open(session: Session, stocktake_id: int) -> StockTake:
    take = session.execute(
        sa.select(StockTake)
        .where(StockTake.id == stocktake_id)
        .with_for_update(of=StockTake)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if take is None:
        raise NotFound("There is no such stock-take.")
    if take.closed_at is not None:
        raise Conflict(f"Stock-take #{take.id} is closed; start a new one to scan again.")
    return take


@dataclass(frozen=True)
class ScanResult:
    scan: StockTakeScan
    created: bool
    expected: bool  # the asset belongs to this stock-take's location and is looked for

    @property
    def message(self) -> str:
        asset = self.scan.asset
        if asset is None:
            return f"{self.scan.tag}: no asset has this tag."
        prefix = "Already scanned" if not self.created else "Scanned"
        if not self.expected:
            return f"{prefix}: {asset.tag} {asset.name} (not expected here)."
        return f"{prefix}: {asset.tag} {asset.name}."


def is_expected(take: StockTake, asset: SchoolAsset | None) -> bool:
    return asset is not None and asset.status in EXPECTED_STATUSES and (not take.location or asset.home_location == take.location)


def record_scan(session: Session, actor: User, stocktake_id: int, typed_tag: str, condition: str = "") -> ScanResult:
    """Record that a label was seen. Scanning the same tag again returns the first scan and changes nothing."""
    require_office(actor)
    tag = normalise_tag(typed_tag)
    if not tag or not TAG_PATTERN.match(tag):
        raise ValidationFailed("That is not an asset tag.", {"tag": ["Scan a Lanyard label or type its tag, like CAM-001."]})
    if len(condition.strip()) > 200:
        raise ValidationFailed("Some details need correcting.", {"condition": ["Use at most 200 characters."]})
    take = _lock_open(session, stocktake_id)
    existing = session.scalar(sa.select(StockTakeScan).where(StockTakeScan.stocktake_id == take.id, StockTakeScan.tag == tag))
    if existing is not None:
        return ScanResult(existing, False, is_expected(take, existing.asset))
    asset = session.scalar(sa.select(SchoolAsset).where(SchoolAsset.tag == tag))
    scan = StockTakeScan(
        stocktake_id=take.id,
        tag=tag,
        asset_id=asset.id if asset else None,
        condition=condition.strip(),
        scanned_by_id=actor.id,
        scanned_at=utcnow(),
    )
    try:
        with session.begin_nested():  # it flushes what is pending first, so the scan is added inside it
            session.add(scan)
            session.flush()
    except IntegrityError:
        # Two phones scanned the same label at once: the unique key kept one; answer with it.
        existing = session.scalar(sa.select(StockTakeScan).where(StockTakeScan.stocktake_id == take.id, StockTakeScan.tag == tag))
        if existing is None:
            raise
        return ScanResult(existing, False, is_expected(take, existing.asset))
    scan.asset = asset
    record_audit_event(
        session,
        actor,
        "stocktake.scanned",
        "stocktake",
        take.id,
        {"tag": tag, "asset_id": asset.id if asset else None},
        related={"asset": asset.id if asset else None},
    )
    return ScanResult(scan, True, is_expected(take, asset))


def scans_of(session: Session, stocktake_id: int) -> list[StockTakeScan]:
    return list(
        session.scalars(
            sa.select(StockTakeScan).where(StockTakeScan.stocktake_id == stocktake_id).order_by(StockTakeScan.id.desc())
        )
    )


@dataclass(frozen=True)
class ScanTally:
    """Progress of an open stock-take: only expected items found count towards the expected total."""

    found: int  # expected items scanned
    expected: int
    unexpected: int  # a real asset, but not looked for here
    unknown: int  # a tag no asset has


def scan_tally(session: Session, take: StockTake) -> ScanTally:
    found = unexpected = unknown = 0
    for scan in scans_of(session, take.id):
        if scan.asset is None:
            unknown += 1
        elif is_expected(take, scan.asset):
            found += 1
        else:
            unexpected += 1
    return ScanTally(found, expected_count(session, take), unexpected, unknown)


def expected_count(session: Session, take: StockTake) -> int:
    query = sa.select(sa.func.count()).select_from(SchoolAsset).where(SchoolAsset.status.in_(EXPECTED_STATUSES))
    if take.location:
        query = query.where(SchoolAsset.home_location == take.location)
    return session.scalar(query) or 0


def close_stocktake(session: Session, actor: User, stocktake_id: int) -> dict[str, int]:
    """Close the stock-take and keep its report: every expected asset is present (scanned), on loan
    (not scanned, lent out) or missing; anything scanned that was not expected here is unexpected.
    Scanned assets get today's last-audited date. Returns the counts by outcome."""
    require_office(actor)
    take = _lock_open(session, stocktake_id)
    now = utcnow()
    scans = {
        row.tag: row
        for row in session.execute(
            sa.select(StockTakeScan.tag, StockTakeScan.asset_id, StockTakeScan.condition).where(
                StockTakeScan.stocktake_id == take.id
            )
        )
    }
    expected = sa.select(SchoolAsset.id, SchoolAsset.tag, Loan.id.label("loan_id"), Loan.borrower_id, Loan.out_at).outerjoin(
        Loan, sa.and_(Loan.asset_id == SchoolAsset.id, Loan.returned_at.is_(None))
    )
    expected = expected.where(SchoolAsset.status.in_(EXPECTED_STATUSES))
    if take.location:
        expected = expected.where(SchoolAsset.home_location == take.location)
    results: list[dict] = []
    seen_tags: set[str] = set()
    for row in session.execute(expected):
        seen_tags.add(row.tag)
        scan = scans.get(row.tag)
        base = {"stocktake_id": take.id, "asset_id": row.id, "tag": row.tag, "condition": scan.condition if scan else ""}
        if scan is not None:
            results.append(
                {**base, "outcome": StockTakeOutcome.PRESENT.value, "loan_id": None, "borrower_id": None, "loaned_since": None}
            )
        elif row.loan_id is not None:
            results.append(
                {
                    **base,
                    "outcome": StockTakeOutcome.ON_LOAN.value,
                    "loan_id": row.loan_id,
                    "borrower_id": row.borrower_id,
                    "loaned_since": row.out_at,
                }
            )
        else:
            results.append(
                {**base, "outcome": StockTakeOutcome.MISSING.value, "loan_id": None, "borrower_id": None, "loaned_since": None}
            )
    for tag, scan in scans.items():
        if tag not in seen_tags:
            results.append(
                {
                    "stocktake_id": take.id,
                    "asset_id": scan.asset_id,
                    "tag": tag,
                    "condition": scan.condition,
                    "outcome": StockTakeOutcome.UNEXPECTED.value,
                    "loan_id": None,
                    "borrower_id": None,
                    "loaned_since": None,
                }
            )
    if results:
        # A plain executemany: the ORM's bulk path costs more than the insert itself at 500 rows.
        session.execute(cast(sa.Table, StockTakeResult.__table__).insert(), results)
    audited = [scan.asset_id for scan in scans.values() if scan.asset_id is not None]
    for start in range(0, len(audited), 500):
        session.execute(
            sa.update(SchoolAsset).where(SchoolAsset.id.in_(audited[start : start + 500])).values(last_audited_at=now)
        )
    take.closed_at = now
    take.closed_by_id = actor.id
    counts = {outcome.value: 0 for outcome in StockTakeOutcome}
    for result in results:
        counts[result["outcome"]] += 1
    session.flush()
    record_audit_event(session, actor, "stocktake.closed", "stocktake", take.id, counts)
    return counts


def stocktake_report(session: Session, take: StockTake) -> dict[str, list[StockTakeResult]]:
    """The kept report of a closed stock-take, grouped by outcome (missing first: that is what needs acting on)."""
    report: dict[str, list[StockTakeResult]] = {
        StockTakeOutcome.MISSING.value: [],
        StockTakeOutcome.ON_LOAN.value: [],
        StockTakeOutcome.UNEXPECTED.value: [],
        StockTakeOutcome.PRESENT.value: [],
    }
    for result in session.scalars(
        sa.select(StockTakeResult).where(StockTakeResult.stocktake_id == take.id).order_by(StockTakeResult.tag)
    ):
        report[result.outcome].append(result)
    return report
