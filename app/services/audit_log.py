"""Reading the audit log (J5): filters, cursor pages, CSV export and the recorded chain status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.orm import Session

from app.clock import school_zone, utcnow
from app.database import long_read
from app.models import AuditEvent, AuditLink, AuditVerification, User
from app.services import text_search
from app.services.audit import ChainReport, record_audit_event, verify_chain
from app.services.csv_safe import csv_lines

PAGE_SIZE = 50
LINK_KINDS = {"person": "user", "device": "personal_device", "asset": "asset", "area": "area"}


@dataclass
class AuditFilters:
    people: list[int] | None = None
    # One id (the API's filters), or the ids a name typed on the page means (empty: it matched nothing).
    device: int | list[int] | None = None
    asset: int | list[int] | None = None
    area: int | list[int] | None = None
    action: str = ""
    since: date | None = None
    until: date | None = None
    links: list[tuple[str, list[str]]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        if self.people is not None:
            self.links.append(("user", [str(p) for p in self.people] or ["none"]))
        for name in ("device", "asset", "area"):
            value = getattr(self, name)
            if isinstance(value, list):
                self.links.append((LINK_KINDS[name], [str(v) for v in value] or ["none"]))
            elif value is not None:
                self.links.append((LINK_KINDS[name], [str(value)]))


def people_matching(session: Session, text: str, limit: int = 20) -> list[int]:
    """Ids of people whose name or email contains the text (the audit page's person filter), from the
    search indexes (``app.services.text_search``)."""
    condition = text_search.people_matching(session, text_search.searchable(text), with_email=True)
    return list(session.scalars(sa.select(User.id).where(condition).limit(limit)))


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=school_zone())


def _date_window(session: Session, since: date, until: date) -> tuple[int, int, bool] | None:
    """The lowest and highest seq of the events inside a closed date range, or None if there are none.

    Events are in seq order and (almost always) in time order, so a date range is a narrow band of
    seqs; with the band known the page reads walk the seq-ordered indexes from its top and stop at its
    bottom instead of passing over every newer event, or fetching every event in the range to sort it.
    The band is exact (the date conditions still apply inside it), so events whose clocks went
    backwards are still found. It is read from the (occurred_at, seq) index alone; the count(*) keeps
    PostgreSQL from answering min/max by walking the primary key until it meets the range.

    The third value says the band holds nothing but events in the range (as many events in the range
    as seqs in the band, so every seq in it is one of them): then the band alone is the date filter,
    and the page is a plain walk down the primary key, whatever the planner's statistics say.
    """
    low, high, count = session.execute(
        sa.select(sa.func.min(AuditEvent.seq), sa.func.max(AuditEvent.seq), sa.func.count()).where(
            AuditEvent.occurred_at >= _local_midnight(since),
            AuditEvent.occurred_at < _local_midnight(until + timedelta(days=1)),
        )
    ).one()
    return (low, high, count == high - low + 1) if count else None


_NOTHING = object()


def _window(session: Session, filters: AuditFilters):
    """The seq band of a closed date range; _NOTHING without one; None when no event is in it."""
    return _date_window(session, filters.since, filters.until) if filters.since and filters.until else _NOTHING


def _filtered(
    filters: AuditFilters, window, driver_refs: list[str] | None = None
) -> tuple[sa.Select, so.QueryableAttribute[int]]:
    """Events matching the filters, newest first, and the seq column the cursor applies to.

    The first link filter drives the query through the (kind, ref, seq) index, so a page costs the
    same whether the log holds a thousand events or a million. ``driver_refs`` narrows that first
    filter to some of its refs (page_of_events reads each ref's own ordered run).
    """
    links = filters.links
    if links:
        driver = sa.orm.aliased(AuditLink)
        query = (
            sa.select(AuditEvent)
            .join(driver, driver.seq == AuditEvent.seq)
            .where(driver.kind == links[0][0], driver.ref.in_(links[0][1] if driver_refs is None else driver_refs))
            .order_by(driver.seq.desc())
        )
        seq_column = driver.seq
        for kind, refs in links[1:]:
            extra = sa.orm.aliased(AuditLink)
            query = query.where(sa.exists().where(extra.seq == AuditEvent.seq, extra.kind == kind, extra.ref.in_(refs)))
    else:
        query = sa.select(AuditEvent).order_by(AuditEvent.seq.desc())
        seq_column = AuditEvent.seq
    exact_band = False
    if window is not _NOTHING:
        low, high, exact_band = window
        query = query.where(seq_column.between(low, high))
    if filters.action:
        query = query.where(AuditEvent.action.like(filters.action.replace("%", "").replace("_", r"\_") + "%", escape="\\"))
    if filters.since and not exact_band:
        query = query.where(AuditEvent.occurred_at >= _local_midnight(filters.since))
    if filters.until and not exact_band:
        query = query.where(AuditEvent.occurred_at < _local_midnight(filters.until + timedelta(days=1)))
    return query, seq_column


def page_of_events(
    session: Session, filters: AuditFilters, before: int | None = None, size: int = PAGE_SIZE
) -> tuple[list[AuditEvent], int | None]:
    """One page, newest first; the cursor for the next page is the last seq shown.

    When the first link filter names several refs (a name matching several people), each ref's events
    are read newest first from the index up to a page's worth and merged, rather than collecting every
    event of every one of them to sort; the planner cannot be trusted to see that ('5' is a person and
    also a very common area, so it misjudges how many rows a ref has).
    """
    window = _window(session, filters)
    if window is None:
        return [], None
    refs = filters.links[0][1] if filters.links else []
    if len(refs) > 1:
        runs = []
        for ref in refs:
            run, seq_column = _filtered(filters, window, [ref])
            if before is not None:
                run = run.where(seq_column < before)
            runs.append(sa.select(run.with_only_columns(seq_column.label("seq")).limit(size + 1).subquery().c.seq))
        merged = sa.union_all(*runs).subquery()
        newest = sa.select(merged.c.seq).order_by(merged.c.seq.desc()).limit(size + 1)
        query = sa.select(AuditEvent).where(AuditEvent.seq.in_(newest)).order_by(AuditEvent.seq.desc())
    else:
        query, seq_column = _filtered(filters, window)
        if before is not None:
            query = query.where(seq_column < before)
    # The page shows each actor's name; their roles are not needed, so do not fetch them.
    query = query.options(sa.orm.joinedload(AuditEvent.actor).lazyload(User.role_rows))
    events = list(session.scalars(query.limit(size + 1)))
    more = len(events) > size
    events = events[:size]
    return events, (events[-1].seq if more and events else None)


CSV_HEADER = [
    "seq",
    "occurred_at_utc",
    "actor_id",
    "actor",
    "action",
    "subject_type",
    "subject_id",
    "details",
    "ip",
    "user_agent",
    "hash",
]


def export_rows(session: Session, filters: AuditFilters) -> Iterator[str]:
    """The filtered log as CSV lines, oldest first, streamed in batches."""
    window = _window(session, filters)
    if window is None:
        return csv_lines(CSV_HEADER, iter(()))
    query = _filtered(filters, window)[0].order_by(None).order_by(AuditEvent.seq).execution_options(yield_per=2000)
    names = dict(session.execute(sa.select(User.id, User.display_name)).tuples().all())

    def rows():
        result = session.execute(
            query.with_only_columns(
                AuditEvent.seq,
                AuditEvent.occurred_at,
                AuditEvent.actor_id,
                AuditEvent.action,
                AuditEvent.subject_type,
                AuditEvent.subject_id,
                AuditEvent.details,
                AuditEvent.ip,
                AuditEvent.user_agent,
                AuditEvent.hash,
            )
        )
        try:
            for row in result:
                yield [
                    row.seq,
                    row.occurred_at.isoformat(),
                    row.actor_id or "",
                    names.get(row.actor_id, ""),
                    row.action,
                    row.subject_type,
                    row.subject_id,
                    row.details,
                    row.ip,
                    row.user_agent,
                    row.hash,
                ]
        finally:
            result.close()

    return csv_lines(CSV_HEADER, rows())


def describe(event: AuditEvent) -> dict:
    return {
        "seq": event.seq,
        "occurred_at": event.occurred_at.isoformat(),
        "actor": {"id": event.actor_id, "name": event.actor.display_name} if event.actor else None,
        "action": event.action,
        "subject_type": event.subject_type,
        "subject_id": event.subject_id,
        "details": json.loads(event.details),
        "ip": event.ip,
        "hash": event.hash,
    }


def published_heads(path) -> list[dict]:
    """The heads published outside the database (instance/audit-heads.jsonl), oldest first."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def last_published_head(path) -> tuple[int, str] | None:
    heads = published_heads(path)
    return (int(heads[-1]["seq"]), heads[-1]["hash"]) if heads else None


def publish_head(path, report: ChainReport) -> dict:
    """Append the verified head to the file kept outside the database (and in the backups).

    The head event's own time goes with it: a retention checkpoint may later cut this head only if that
    event is older than the checkpoint's time limit (see ``audit.verify_chain``).
    """
    occurred_at = report.last_occurred_at.isoformat() if report.last_occurred_at is not None else None
    entry = {"seq": report.last_seq, "hash": report.last_hash, "published_at": utcnow().isoformat(), "occurred_at": occurred_at}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(entry) + "\n")
    return entry


def latest_verification(session: Session) -> AuditVerification | None:
    return session.scalar(sa.select(AuditVerification).order_by(AuditVerification.id.desc()).limit(1))


def verify_and_record(session: Session, actor: User | None, published: list[dict]) -> ChainReport:
    """Walk the chain (in a read transaction of its own: see ``long_read``) against every published head,
    keep the result for the audit page, and audit that it was checked (in the transaction that follows,
    which the caller commits)."""
    with long_read(session):
        report = verify_chain(session, published)
    record_verification(session, report)
    record_audit_event(
        session,
        actor,
        "audit.verified",
        "audit",
        "",
        {"ok": report.ok, "verified_count": report.verified_count, "broken_at": report.broken_at_seq},
    )
    return report


def record_verification(session: Session, report: ChainReport) -> None:
    """Keep a verification's result for the audit page's "is the log intact?" panel."""
    session.add(
        AuditVerification(
            checked_at=utcnow(),
            verified_count=report.verified_count,
            last_seq=report.last_seq,
            last_hash=report.last_hash,
            broken_at_seq=report.broken_at_seq,
            problem=report.problem[:200],
        )
    )
