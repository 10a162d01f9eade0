"""The daily audit digest: the chain's verified head published outside the database (DESIGN.md section 6).

A chain cannot see its own newest events deleted, so once a day the head (event number and hash) is
appended to ``instance/audit-heads.jsonl``, the admins and governors get it as a notice (and a push) they
can keep or print, and ``verify`` then insists the chain still holds every published head.

The chain is walked in a read transaction (on SQLite a reader never blocks the writers) and only the
result is written in a short write transaction afterwards, so a million events never hold the write
lock. A lock file makes sure one process publishes a day's head, however many run the scheduler.

A background job, not a request: it settles its own short write transaction (the one service that commits;
every other service leaves the commit to its caller).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path

from sqlalchemy.orm import Session

from app.clock import format_date, to_local
from app.database import long_read, write_intent
from app.models import Role
from app.services.accounts import users_with_role
from app.services.audit import ChainReport, grouped_hash, record_audit_event, verify_chain
from app.services.audit_log import publish_head, published_heads, record_verification
from app.services.notifications import notify

HEADS_FILE = "audit-heads.jsonl"
# Early enough to be there when the office opens, late enough not to wake anyone with a push.
PUBLISH_FROM = time(6, 0)


@dataclass(frozen=True)
class DigestResult:
    report: ChainReport
    published: dict | None  # the head appended to the file; None when the chain is broken


def heads_path(instance_path: str | Path) -> Path:
    return Path(instance_path) / HEADS_FILE


def digest_due(path: Path, now: datetime) -> bool:
    """True once the school day's publishing time has come and today's head is not yet published."""
    local_now = to_local(now)
    if local_now.time() < PUBLISH_FROM:
        return False
    heads = published_heads(path)
    if not heads:
        return True
    return to_local(datetime.fromisoformat(heads[-1]["published_at"])).date() < local_now.date()


@contextmanager
def _publisher_lock(path: Path) -> Iterator[bool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / f"{path.name}.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _readers(session: Session) -> list:
    return [*users_with_role(session, Role.ADMIN), *users_with_role(session, Role.GOVERNOR)]


def publish_daily_head(session: Session, path: Path, now: datetime, *, force: bool = False) -> DigestResult | None:
    """Verify the chain and publish its head if today's is due (or ``force``); None when not due or busy."""
    if not force and not digest_due(path, now):
        return None
    with _publisher_lock(path) as locked:
        if not locked or (not force and not digest_due(path, now)):
            return None
        with long_read(session):
            report = verify_chain(session, published_heads(path))
        published = publish_head(path, report) if report.ok else None
        with write_intent():
            record_verification(session, report)
            day = format_date(now)
            if published is not None:
                record_audit_event(
                    session,
                    None,
                    "audit.head_published",
                    "audit",
                    str(report.last_seq or 0),
                    {"seq": report.last_seq, "hash_starts": (report.last_hash or "")[:12]},
                )
                notify(
                    session,
                    _readers(session),
                    kind="audit.head_published",
                    title=f"Audit log digest for {day}",
                    body=f"{report.verified_count} events verified. Head: event {report.last_seq or 0}, hash {grouped_hash(report.last_hash)}. Keep this: it proves later that nothing was removed.",
                    url="/audit/digest",
                )
            else:
                record_audit_event(session, None, "audit.verified", "audit", "", {"ok": False, "broken_at": report.broken_at_seq})
                notify(
                    session,
                    _readers(session),
                    kind="audit.chain_broken",
                    title="The audit log does not verify",
                    body=f"Event {report.broken_at_seq}: {report.problem}. Tell the headteacher and the chair of governors.",
                    url="/audit",
                )
            session.commit()
        return DigestResult(report, published)


def scheduled_digest(app) -> DigestResult | None:
    """The scheduler's daily job (runs outside the timed-jobs transaction: see the module's docstring)."""
    from app.clock import utcnow
    from app.extensions import db

    return publish_daily_head(db.session, heads_path(app.instance_path), utcnow())
