"""Record and verify the hash-chained audit log (DESIGN.md section 6).

Each event's hash is SHA-256 of the previous hash followed by the canonical JSON of the event, so
altering, inserting or removing a row breaks every link after it. Appends are serialised (BEGIN
IMMEDIATE on SQLite, an advisory lock on PostgreSQL) so that two writers never fork the chain.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from json.encoder import encode_basestring

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.database import lock_for_append, wants_write_lock
from app.models import AuditCheckpoint, AuditEvent, AuditLink, User

GENESIS_HASH = "0" * 64
AUDIT_APPEND_LOCK = 7_001_001
_LONG_DIGIT_RUN = re.compile(r"\d{14,}")
CHECKPOINT_ACTION = "audit.checkpoint"
# The shortest period the retention setting allows (1 year; 0 keeps everything): a checkpoint cutting
# anything newer than this before its own event is not retention's work.
SHORTEST_RETENTION = timedelta(days=365)
# Room for clocks and for a head published while newer events were being written.
_CLOCK_SLACK = timedelta(days=1)


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
    payload = _canonical(seq, _timestamp(occurred_at), actor_id, action, subject_type, subject_id, details, ip, user_agent)
    return sha256((prev_hash + payload).encode()).hexdigest()


def _string(value) -> str:
    """json.dumps(value, ensure_ascii=False): for a str, exactly the encoder json.dumps itself calls."""
    return encode_basestring(value) if type(value) is str else json.dumps(value, ensure_ascii=False)


class _Encoded(dict):
    """JSON strings of the few values that repeat across events (actions, subject types, IPs, agents)."""

    def __missing__(self, value) -> str:
        if len(self) >= 4096:
            self.clear()
        encoded = self[value] = _string(value)
        return encoded


def _canonical(  # noqa: PLR0917 (the event's fields in their canonical order)
    seq, timestamp: str, actor_id, action, subject_type, subject_id, details: str, ip, user_agent, encoded=None
) -> str:
    """The canonical JSON of one event: the one definition both appending and verifying hash.

    ``timestamp`` is the ISO text (always a str); ``encoded`` is an _Encoded cache for verify's million calls.
    """
    text = encoded.__getitem__ if encoded is not None else _string
    return (
        f'{{"action":{text(action)},"actor_id":{"null" if actor_id is None else int(actor_id)},"details":{details},'
        f'"ip":{text(ip)},"occurred_at":{encode_basestring(timestamp)},"seq":{int(seq)},'
        f'"subject_id":{_string(subject_id)},"subject_type":{text(subject_type)},"user_agent":{text(user_agent)}}}'
    )


def record_audit_event(
    session: Session,
    actor: User | None,
    action: str,
    subject_type: str = "",
    subject_id: object = "",
    details: dict | None = None,
    *,
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
    head = session.execute(sa.select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
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


def grouped_hash(value: str | None) -> str:
    """A hash in groups of eight, for reading aloud or from paper (and never a long run of digits)."""
    return " ".join(value[i : i + 8] for i in range(0, len(value), 8)) if value else ""


def record_checkpoint(
    session: Session, *, up_to_seq: int, replaced_hash: str, before: datetime, events_removed: int, now: datetime
) -> AuditCheckpoint:
    """Chain a retention checkpoint before anything is cut: append the event vouching for it, then its row.

    The event's details hold the last seq to be cut and its hash (the hash the rest of the chain will
    continue from), so its own hash covers them. The hash is recorded in groups of eight: a bare hex
    hash may hold a run of 14 digits, which ``canonical_details`` would redact as a possible IMEI.
    The database's delete guard reads the same details, so the caller may cut up to ``up_to_seq`` next.
    """
    details = {
        "before": before.astimezone(UTC).isoformat(timespec="microseconds"),
        "events_removed": events_removed,
        "hash": grouped_hash(replaced_hash),
        "up_to_seq": up_to_seq,
    }
    event = record_audit_event(session, None, CHECKPOINT_ACTION, "audit", up_to_seq, details)
    checkpoint = AuditCheckpoint(
        up_to_seq=up_to_seq, hash=replaced_hash, created_at=now, events_removed=events_removed, event_seq=event.seq
    )
    session.add(checkpoint)
    session.flush()
    return checkpoint


@dataclass(frozen=True)
class ChainReport:
    verified_count: int
    last_seq: int | None
    last_hash: str
    last_occurred_at: datetime | None
    broken_at_seq: int | None = None
    problem: str = ""
    # The retention checkpoint the verified chain starts after (events up to it were cut), if any.
    cut_up_to: int | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at_seq is None and not self.problem


_CHAIN_SQLITE = (
    "SELECT seq, occurred_at, actor_id, action, subject_type, subject_id, details, ip, user_agent, prev_hash, hash "
    "FROM audit_events ORDER BY seq"
)
# PostgreSQL renders the canonical timestamp itself (the same text as isoformat(timespec="microseconds") in
# UTC), on its own core, instead of the client parsing a million timestamps and formatting them again.
_CHAIN_POSTGRESQL = (
    """SELECT seq, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), actor_id, action, """
    "subject_type, subject_id, details, ip, user_agent, prev_hash, hash FROM audit_events ORDER BY seq"
)
VERIFY_BATCH = 20_000


def _chain_batches(session: Session) -> Iterator[list[tuple]]:
    """Every event in chain order as plain tuples, in big batches, without ORM objects.

    PostgreSQL streams through a server-side cursor, fetched one batch ahead on a thread so the server
    reads and sends while this thread hashes; SQLite reads in-process in fetchmany batches.
    """
    connection = session.connection().connection.driver_connection
    if connection is None:
        raise RuntimeError("the session's connection has no DBAPI connection")
    if session.get_bind().dialect.name != "postgresql":
        cursor = connection.cursor()
        try:
            cursor.execute(_CHAIN_SQLITE)
            while batch := cursor.fetchmany(VERIFY_BATCH):
                yield batch
        finally:
            cursor.close()
        return
    cursor = connection.cursor(name="lanyard_verify_chain")
    try:
        cursor.execute(_CHAIN_POSTGRESQL)
        yield from _read_ahead(lambda: cursor.fetchmany(VERIFY_BATCH))
    finally:
        cursor.close()


def _read_ahead(fetch) -> Iterator[list]:
    """Yield fetch() results until an empty one, fetching the next while the caller works on this one."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-verify") as reader:
        pending = reader.submit(fetch)
        try:
            while batch := pending.result():
                pending = reader.submit(fetch)
                yield batch
        finally:
            pending.cancel()
            with suppress(Exception):  # a read error after we stopped reading is not news
                pending.result()  # never leave the reader using the connection


PublishedHeads = tuple[int, str] | Sequence[Mapping] | None


def _heads_to_check(published: PublishedHeads) -> list[tuple[int, str, Mapping]]:
    """(seq, hash, entry) for every published head; a head of an empty chain proves nothing and is left out."""
    if published is None:
        return []
    if isinstance(published, tuple):
        return [(int(published[0]), str(published[1]), {})] if published[0] else []
    return [(int(entry["seq"]), str(entry.get("hash") or ""), entry) for entry in published if entry.get("seq")]


def _instant(entry: Mapping, key: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(str(entry[key]))
    except (KeyError, TypeError, ValueError):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass
class _Voucher:
    """What the audit.checkpoint event vouching for the newest checkpoint said, once the walk reaches it."""

    occurred_at: datetime | None = None
    before: datetime | None = None


def _recorded_checkpoint(row, action: str, details: str) -> dict | None:
    """The details of an audit.checkpoint event that records this checkpoint row; None if it does not."""
    if action != CHECKPOINT_ACTION:
        return None
    try:
        recorded = json.loads(details)
        matches = recorded["up_to_seq"] == row.up_to_seq and str(recorded["hash"]).replace(" ", "") == row.hash
    except (ValueError, KeyError, TypeError):
        return None
    return recorded if matches else None


def _unvouched(session: Session, checkpoint) -> str:
    """Why the chain does not vouch for the checkpoint row, before walking it ("" if its event does)."""
    cut = checkpoint.up_to_seq
    if checkpoint.event_seq is None:
        return f"the checkpoint at event {cut} is not vouched for by the chain (no checkpoint event: forged, or made before checkpoints were chained)"
    if checkpoint.event_seq <= cut:
        return f"the checkpoint at event {cut} is not vouched for by the chain"
    event = session.execute(
        sa.select(AuditEvent.action, AuditEvent.details).where(AuditEvent.seq == checkpoint.event_seq)
    ).first()
    if event is None:
        return f"the checkpoint at event {cut} is not vouched for: its event {checkpoint.event_seq} is not in the chain"
    if _recorded_checkpoint(checkpoint, event.action, event.details) is None:
        return f"the checkpoint at event {cut} is not vouched for: event {checkpoint.event_seq} does not record it"
    return ""


def _checkpoint_problem(checkpoint, voucher: _Voucher, heads: list[tuple[int, str, Mapping]]) -> tuple[int, str] | None:
    """Whether a vouched checkpoint that cut published heads could be retention's work.

    Anyone with database access can append a well-formed checkpoint event and cut behind it. Against
    the heads published outside the database that is honest only if it cut nothing newer than the
    shortest retention period: the checkpoint's time limit (``before``) is at least that far behind its
    own event, which is not in the future, and each published head it cut is older than the limit (by
    the head event's own time, published since 0011, or for a head below the cut by the time it was
    published, since the event after it, also cut, came later).
    """
    cut = checkpoint.up_to_seq
    heads_cut = [(seq, head_hash, entry) for seq, head_hash, entry in heads if seq <= cut]
    for seq, head_hash, _entry in heads_cut:
        if seq == cut and head_hash != checkpoint.hash:
            return seq, "the published head does not match"
    if not heads_cut:
        return None
    if voucher.before is None or voucher.occurred_at is None:
        return cut, f"the checkpoint at event {cut} is not vouched for: its event does not say what it cut"
    if voucher.occurred_at > utcnow() + _CLOCK_SLACK:
        return cut, f"the checkpoint at event {cut} is dated in the future ({voucher.occurred_at:%Y-%m-%d})"
    if voucher.before > voucher.occurred_at - SHORTEST_RETENTION:
        return cut, f"the checkpoint at event {cut} cut events newer than retention ever allows"
    for seq, _head_hash, entry in heads_cut:
        newest = _instant(entry, "occurred_at")
        published = _instant(entry, "published_at")
        if seq < cut and published is not None:
            newest = max(filter(None, (newest, published - _CLOCK_SLACK)))
        if newest is not None and newest >= voucher.before:
            return (
                seq,
                f"event {seq} was published as the head on {newest:%Y-%m-%d}, too recently for the checkpoint at event {cut} to have cut it",
            )
    return None


def verify_chain(session: Session, published_head: PublishedHeads = None) -> ChainReport:
    """Walk the chain in order and report the first broken link, if any.

    ``published_head`` is what was published outside the table: one (seq, hash), or every entry of the
    heads file (dicts with seq, hash, published_at and, since 0011, occurred_at). The chain must still
    hold every published head newer than its retention checkpoint, which catches the newest events being
    deleted (something no chain can see by itself).

    The chain starts after the newest retention checkpoint only if the chain vouches for it: the
    audit.checkpoint event named by the row follows the cut and records the same seq and hash, and the
    first event kept links to that hash. A checkpoint nothing vouches for is reported, never trusted.

    Every event's hash is recomputed from its fields and the hash before it, exactly as
    record_audit_event computed it (the same ``_canonical``).
    """
    checkpoints = session.execute(
        sa.select(AuditCheckpoint.up_to_seq, AuditCheckpoint.hash, AuditCheckpoint.event_seq).order_by(
            AuditCheckpoint.up_to_seq.desc()
        )
    ).all()
    checkpoint = checkpoints[0] if checkpoints else None
    prev_hash, first_seq = (checkpoint.hash, checkpoint.up_to_seq + 1) if checkpoint else (GENESIS_HASH, 1)
    cut = first_seq - 1
    heads = _heads_to_check(published_head)
    heads_in_chain, vouchers = _watch_list(checkpoints, heads, cut)
    watched = heads_in_chain.keys() | vouchers.keys()
    voucher = _Voucher()
    expected_seq = first_seq
    last_seq = last_timestamp = None
    raw_sqlite = session.get_bind().dialect.name != "postgresql"
    encoded = _Encoded()

    def report(broken_at: int | None = None, problem: str = "") -> ChainReport:
        when = datetime.fromisoformat(last_timestamp) if last_timestamp is not None else None
        return ChainReport(
            expected_seq - first_seq, last_seq, prev_hash, when, broken_at, problem, checkpoint.up_to_seq if checkpoint else None
        )

    if checkpoint is not None and (problem := _unvouched(session, checkpoint)):
        return report(cut, problem)

    for batch in _chain_batches(session):
        for (
            seq,
            timestamp,
            actor_id,
            action,
            subject_type,
            subject_id,
            details,
            ip,
            user_agent,
            stored_prev,
            stored_hash,
        ) in batch:
            if seq != expected_seq:
                return report(*_gap(seq, expected_seq, first_seq, last_seq))
            # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC: the canonical form without a datetime round trip.
            stamp = (
                (
                    f"{timestamp[:10]}T{timestamp[11:]}+00:00"
                    if len(timestamp) == 26 and timestamp[10] == " "
                    else _sqlite_timestamp(timestamp)
                )
                if raw_sqlite
                else timestamp
            )
            payload = _canonical(seq, stamp, actor_id, action, subject_type, subject_id, details, ip, user_agent, encoded)
            if stored_prev != prev_hash or sha256((prev_hash + payload).encode()).hexdigest() != stored_hash:
                return report(seq, f"event {seq} has been altered")
            if seq in watched:
                if seq in heads_in_chain and heads_in_chain[seq] != {stored_hash}:
                    return ChainReport(
                        seq - first_seq,
                        seq,
                        stored_hash,
                        datetime.fromisoformat(stamp),
                        seq,
                        "the published head does not match",
                        cut or None,
                    )
                recorded = _recorded_checkpoint(vouchers[seq], action, details) if seq in vouchers else None
                if seq in vouchers and recorded is None:
                    cut_at = vouchers[seq].up_to_seq
                    return report(cut_at, f"the checkpoint at event {cut_at} is not vouched for: event {seq} does not record it")
                if recorded is not None and vouchers[seq] is checkpoint:
                    voucher = _Voucher(datetime.fromisoformat(stamp), _instant(recorded, "before"))
            prev_hash = stored_hash
            last_seq = seq
            last_timestamp = stamp
            expected_seq = seq + 1
    if broken := _end_problem(checkpoint, voucher, heads, heads_in_chain, last_seq):
        return report(*broken)
    return report()


def _gap(seq: int, expected_seq: int, first_seq: int, last_seq: int | None) -> tuple[int, str]:
    """Where and why the chain breaks when the walk meets ``seq`` instead of ``expected_seq``."""
    if last_seq is None:
        return seq, f"the chain does not start at event {first_seq}"
    return expected_seq, f"event {expected_seq} is missing"


def _watch_list(checkpoints, heads: list[tuple[int, str, Mapping]], cut: int) -> tuple[dict[int, set[str]], dict]:
    """The published heads the walk must meet (by seq), and the checkpoint rows whose vouching event it will meet."""
    heads_in_chain: dict[int, set[str]] = {}
    for seq, head_hash, _entry in heads:
        if seq > cut:
            heads_in_chain.setdefault(seq, set()).add(head_hash)
    # Every checkpoint row whose vouching event is still in the chain is checked against it.
    vouchers = {row.event_seq: row for row in checkpoints if row.event_seq is not None and row.event_seq > cut}
    return heads_in_chain, vouchers


def _end_problem(
    checkpoint, voucher: _Voucher, heads, heads_in_chain: dict[int, set[str]], last_seq: int | None
) -> tuple[int, str] | None:
    """What the finished walk shows: a checkpoint no event vouched for or cut too much, or published heads gone."""
    if checkpoint is not None:
        cut = checkpoint.up_to_seq
        if last_seq is None or checkpoint.event_seq > last_seq:
            return cut, f"the checkpoint at event {cut} is not vouched for: its event {checkpoint.event_seq} is not in the chain"
        if late := _checkpoint_problem(checkpoint, voucher, heads):
            return late
    gone = [seq for seq in heads_in_chain if last_seq is None or seq > last_seq]
    if gone:
        return max(gone), f"events up to {max(gone)} were published but are gone"
    return None
