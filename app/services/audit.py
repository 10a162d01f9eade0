"""Record and verify the hash-chained audit log (DESIGN.md section 6).

Each event's hash is SHA-256 of the previous hash followed by the canonical JSON of the event, so
altering, inserting or removing a row breaks every link after it. Appends are serialised (BEGIN
IMMEDIATE on SQLite, an advisory lock on PostgreSQL) so that two writers never fork the chain.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from app.clock import utcnow
from app.database import lock_for_append, wants_write_lock
from app.models import AuditCheckpoint, AuditEvent, AuditLink, User

GENESIS_HASH = "0" * 64
AUDIT_APPEND_LOCK = 7_001_001
_LONG_DIGIT_RUN = re.compile(r"\d{14,}")


@dataclass(frozen=True)
class Origin:
    """Where a change came from; set once per request by the web layer."""

    ip: str = ""
    user_agent: str = ""


_NO_ORIGIN = Origin()
_origin: ContextVar[Origin | None] = ContextVar("lanyard_audit_origin", default=None)


@contextmanager
def origin_of_changes(origin: Origin) -> Iterator[None]:
    token = _origin.set(origin)
    try:
        yield
    finally:
        _origin.reset(token)


def set_origin(origin: Origin) -> object:
    return _origin.set(origin)


def reset_origin(token: object) -> None:
    _origin.reset(token)  # type: ignore[arg-type]


def canonical_details(details: dict | None) -> str:
    """Canonical JSON of the details, with any run of 14+ digits (a possible IMEI) redacted.

    Services record the last 4 digits themselves; this is the backstop for text people typed.
    """
    text = json.dumps(details or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return _LONG_DIGIT_RUN.sub("[redacted]", text)


def _timestamp(value: datetime | str) -> str:
    if isinstance(value, str):
        return value  # already canonical (verify_chain reads SQLite's text without parsing it)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _when(value: datetime | str) -> datetime:
    return datetime.fromisoformat(_sqlite_timestamp(value)) if isinstance(value, str) else value


def _sqlite_timestamp(stored: str) -> str:
    """SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC: the canonical form without a datetime round trip."""
    if len(stored) == 26 and stored[10] == " ":
        return f"{stored[:10]}T{stored[11:]}+00:00"
    return _timestamp(datetime.fromisoformat(stored).replace(tzinfo=UTC))


def event_hash(prev_hash: str, *, seq, occurred_at, actor_id, action, subject_type, subject_id, details, ip, user_agent) -> str:
    """SHA-256 of the previous hash and the event's canonical JSON (keys sorted, compact).

    ``details`` is stored already canonical, so it is placed as it is; the result is the same text
    json.dumps(..., sort_keys=True) would give, built without re-parsing a million details on verify.
    """
    text = _string
    payload = (
        f'{{"action":{text(action)},"actor_id":{"null" if actor_id is None else int(actor_id)},"details":{details},'
        f'"ip":{text(ip)},"occurred_at":{text(_timestamp(occurred_at))},"seq":{int(seq)},'
        f'"subject_id":{text(subject_id)},"subject_type":{text(subject_type)},"user_agent":{text(user_agent)}}}'
    )
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()


def _string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def record_audit_event(
    session,
    actor: User | None,
    action: str,
    subject_type: str = "",
    subject_id: object = "",
    details: dict | None = None,
    related: dict[str, object] | None = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction.

    ``related`` names what else the event is about (e.g. ``{"area": 3, "personal_device": 5}``) so
    the audit log can be filtered by it; the actor and the subject are linked automatically.
    """
    if session.get_bind().dialect.name == "sqlite" and not wants_write_lock():
        raise RuntimeError("audit events must be appended inside a write transaction (BEGIN IMMEDIATE)")
    lock_for_append(session, AUDIT_APPEND_LOCK)
    session.flush()
    head = session.execute(
        sa.select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (head.seq + 1, head.hash) if head else (1, GENESIS_HASH)
    origin = _origin.get() or _NO_ORIGIN
    fields = dict(
        seq=seq,
        occurred_at=utcnow(),
        actor_id=actor.id if actor is not None else None,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id) if subject_id is not None else "",
        details=canonical_details(details),
        ip=origin.ip[:64],
        user_agent=origin.user_agent[:255],
    )
    event = AuditEvent(prev_hash=prev_hash, hash=event_hash(prev_hash, **fields), **fields)
    session.add(event)
    links = {("user", str(event.actor_id))} if event.actor_id is not None else set()
    if subject_type and event.subject_id:
        links.add((subject_type, event.subject_id))
    for kind, ref in (related or {}).items():
        if ref is not None and ref != "":
            links.add((kind, str(ref)))
    session.add_all(AuditLink(seq=seq, kind=kind[:20], ref=ref[:40]) for kind, ref in sorted(links))
    session.flush()
    return event


@dataclass(frozen=True)
class ChainReport:
    verified_count: int
    last_seq: int | None
    last_hash: str
    last_occurred_at: datetime | None
    broken_at_seq: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at_seq is None and not self.problem


def verify_chain(session, published_head: tuple[int, str] | None = None) -> ChainReport:
    """Walk the chain in order and report the first broken link, if any.

    ``published_head`` is a (seq, hash) published outside the table: the chain must still contain it,
    which catches the newest events being deleted (something no chain can see by itself).
    """
    checkpoint = session.execute(
        sa.select(AuditCheckpoint.up_to_seq, AuditCheckpoint.hash).order_by(AuditCheckpoint.up_to_seq.desc()).limit(1)
    ).first()
    prev_hash, first_seq = (checkpoint.hash, checkpoint.up_to_seq + 1) if checkpoint else (GENESIS_HASH, 1)
    expected_seq = None
    count = 0
    last = None
    head_seen = published_head is None
    raw_text = session.get_bind().dialect.name == "sqlite"
    occurred = sa.type_coerce(AuditEvent.occurred_at, sa.String).label("occurred_at") if raw_text else AuditEvent.occurred_at
    rows = session.execute(
        sa.select(
            AuditEvent.seq,
            occurred,
            AuditEvent.actor_id,
            AuditEvent.action,
            AuditEvent.subject_type,
            AuditEvent.subject_id,
            AuditEvent.details,
            AuditEvent.ip,
            AuditEvent.user_agent,
            AuditEvent.prev_hash,
            AuditEvent.hash,
        )
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=5000)
    )
    try:
        for row in rows:
            if expected_seq is None:
                expected_seq = row.seq
                if row.seq != first_seq:
                    return ChainReport(count, None, prev_hash, None, row.seq, f"the chain does not start at event {first_seq}")
            if row.seq != expected_seq:
                return ChainReport(count, last.seq if last else None, prev_hash, _when(last.occurred_at) if last else None, expected_seq, f"event {expected_seq} is missing")
            recomputed = event_hash(
                prev_hash,
                seq=row.seq,
                occurred_at=_sqlite_timestamp(row.occurred_at) if raw_text else row.occurred_at,
                actor_id=row.actor_id,
                action=row.action,
                subject_type=row.subject_type,
                subject_id=row.subject_id,
                details=row.details,
                ip=row.ip,
                user_agent=row.user_agent,
            )
            if row.prev_hash != prev_hash or row.hash != recomputed:
                return ChainReport(count, last.seq if last else None, prev_hash, _when(last.occurred_at) if last else None, row.seq, f"event {row.seq} has been altered")
            if published_head is not None and row.seq == published_head[0]:
                if row.hash != published_head[1]:
                    return ChainReport(count, row.seq, row.hash, _when(row.occurred_at), row.seq, "the published head does not match")
                head_seen = True
            prev_hash = row.hash
            expected_seq = row.seq + 1
            count += 1
            last = row
    finally:
        rows.close()
    if not head_seen and checkpoint is not None and published_head[0] <= checkpoint.up_to_seq:
        head_seen = True  # that head was cut by retention, behind a recorded checkpoint
    if not head_seen:
        return ChainReport(count, last.seq if last else None, prev_hash, _when(last.occurred_at) if last else None, published_head[0], f"events up to {published_head[0]} were published but are gone")
    return ChainReport(count, last.seq if last else None, prev_hash, _when(last.occurred_at) if last else None)
