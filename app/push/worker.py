"""The push sender: drains the outbox after commit, so nothing is sent for a change that rolled back.

A claim moves a due row's ``next_attempt_at`` past the send timeout (a lease) and counts the attempt,
in a short transaction: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite, so two
senders (threads or ``flask push-worker`` processes) never claim the same row. The HTTP sends happen
outside any transaction; each result is then recorded: delivered, retry later with exponential backoff,
given up after the attempt limit or the message's TTL, or (404/410) the subscription is gone and is
deleted. A sender that dies mid-send leaves its rows to fall due again when the lease ends.

pywebpush fills ``aud`` and ``exp`` into the claims dict it is given, so every call gets a fresh dict;
it has no default timeout, so every call gets one.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import requests
import sqlalchemy as sa
from flask import Flask
from pywebpush import WebPushException, webpush
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.database import lock_for_append, write_intent
from app.models import PushOutbox, PushSubscription
from app.outbox import EmbeddedWorkers, OutboxWorker, PostgresListener, exponential_backoff, seconds_until, wake_on_commit
from app.outbox import reconnect_delay as reconnect_delay  # part of this module's interface
from app.services import school_settings
from app.services.audit import AUDIT_APPEND_LOCK, record_audit_event
from app.services.push import NOTIFY_CHANNEL, QUEUED_FLAG, PushServices, safe_text, validate_subscription
from app.services.push_keys import vapid_key

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=1)
RECORD_WITHIN = 0.25  # seconds a finished send may wait to be recorded together with the next claim
PERMANENT_FAILURES = {400, 403, 413}
GONE = {404, 410}

# Set after any commit that queued push messages, so this process's sender wakes at once.
wake_event = wake_on_commit(QUEUED_FLAG)


@dataclass(frozen=True)
class SenderSettings:
    contact: str
    instance_path: str
    timeout: float = 10.0
    max_attempts: int = 8
    backoff_seconds: float = 5.0
    poll_seconds: float = 2.0
    send_threads: int = 4
    batch_size: int = 50
    services: PushServices = field(default_factory=PushServices.public)
    # After a lost database: wait base, 2x base, ... up to the cap (each with jitter) before trying again.
    reconnect_base_seconds: float = 0.5
    reconnect_cap_seconds: float = 30.0

    @classmethod
    def from_app(cls, app: Flask) -> SenderSettings:
        config = app.config
        return cls(
            contact=config["PUSH_CONTACT"],
            instance_path=app.instance_path,
            timeout=float(config["PUSH_TIMEOUT_SECONDS"]),
            max_attempts=int(config["PUSH_MAX_ATTEMPTS"]),
            backoff_seconds=float(config["PUSH_BACKOFF_SECONDS"]),
            poll_seconds=float(config["PUSH_POLL_SECONDS"]),
            send_threads=max(1, int(config["PUSH_SEND_THREADS"])),
            services=PushServices.from_config(config),
            reconnect_base_seconds=float(config.get("PUSH_RECONNECT_BASE_SECONDS", 0.5)),
            reconnect_cap_seconds=float(config.get("PUSH_RECONNECT_CAP_SECONDS", 30.0)),
        )

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.timeout * 2 + 30)


@dataclass(frozen=True)
class ClaimedMessage:
    id: int
    subscription_id: int
    subscription_info: dict
    payload: str
    urgency: str
    ttl: int
    topic: str | None
    contact: str


@dataclass
class SendResult:
    message_id: int
    outcome: str  # sent, retry, gone, rejected, refused (the subscription fails validation)
    status: int | None = None
    error: str = ""
    retry_after: float | None = None


@dataclass
class DrainReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    gone: int = 0
    dead: int = 0
    refused: int = 0
    outcomes: list[SendResult] = field(default_factory=list)


def backoff(settings: SenderSettings, attempts: int) -> timedelta:
    """Exponential backoff: base, 2x base, 4x base, ... capped at an hour."""
    return exponential_backoff(settings.backoff_seconds, attempts, MAX_BACKOFF)


def _due_filter(now: datetime):
    return sa.and_(PushOutbox.sent_at.is_(None), PushOutbox.dead_at.is_(None), PushOutbox.next_attempt_at <= now)


def next_due_in(session: Session) -> float | None:
    """Seconds until the next pending message falls due (0 if one is due now), None if none is pending."""
    return seconds_until(
        session,
        sa.select(sa.func.min(PushOutbox.next_attempt_at)).where(PushOutbox.sent_at.is_(None), PushOutbox.dead_at.is_(None)),
    )


def claim_due(session: Session, settings: SenderSettings, limit: int | None = None) -> list[ClaimedMessage]:
    """Take due messages for this sender in one short transaction, so no other sender takes them."""
    return settle_and_claim(session, settings, [], DrainReport(), limit or settings.batch_size)


def _claim(session: Session, settings: SenderSettings, limit: int) -> list[ClaimedMessage]:
    """Lease up to ``limit`` due messages to this sender (call inside a write transaction)."""
    if limit <= 0:
        return []
    now = utcnow()
    query = sa.select(PushOutbox).where(_due_filter(now)).order_by(PushOutbox.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.scalars(query))
    contact = school_settings.push_contact(session, settings.contact) if rows else settings.contact
    claimed = []
    for row in rows:
        row.attempts += 1
        row.next_attempt_at = now + settings.lease
        subscription = row.subscription
        claimed.append(
            ClaimedMessage(
                id=row.id,
                subscription_id=subscription.id,
                subscription_info=subscription.info(),
                payload=row.payload,
                urgency=row.urgency,
                ttl=row.ttl,
                topic=row.topic,
                contact=contact,
            )
        )
    session.flush()
    return claimed


_http = threading.local()


def _requests_session() -> requests.Session:
    """One keep-alive HTTP session per sending thread (requests sessions are not shared across threads)."""
    if getattr(_http, "session", None) is None:
        _http.session = requests.Session()
    return _http.session


def send_message(message: ClaimedMessage, settings: SenderSettings) -> SendResult:
    """Check the subscription, then encrypt, sign and POST one message; classify what happened.

    Never raises: whatever goes wrong with one message (py_vapid, pywebpush, requests, cryptography,
    reading the key) becomes that message's result, so a sender thread or process never ends over it.
    """
    info = message.subscription_info
    keys = info.get("keys") or {}
    if errors := validate_subscription(info.get("endpoint"), keys.get("p256dh"), keys.get("auth"), settings.services):
        reason = "; ".join(f"{name}: {problems[0]}" for name, problems in sorted(errors.items()))
        log.warning("push sender: subscription %s is not usable and is removed (%s)", message.subscription_id, reason)
        return SendResult(message.id, "refused", None, f"subscription refused: {reason}")
    try:
        return _post_message(message, settings)
    except Exception as error:  # noqa: BLE001 (any failure is this message's, never the sender's)
        log.exception("push sender: sending message %s failed; it will be retried", message.id)
        return SendResult(message.id, "retry", None, f"{type(error).__name__} while sending")


def _post_message(message: ClaimedMessage, settings: SenderSettings) -> SendResult:
    headers = {"Urgency": message.urgency}
    if message.topic:
        headers["Topic"] = message.topic
    try:
        response = webpush(
            subscription_info=message.subscription_info,
            data=message.payload,
            vapid_private_key=vapid_key(settings.instance_path),
            vapid_claims={"sub": message.contact},
            ttl=message.ttl,
            timeout=settings.timeout,
            headers=headers,
            requests_session=_requests_session(),
        )
    except WebPushException as error:
        status = error.status_code
        if status in GONE:
            return SendResult(message.id, "gone", status, f"push service answered {status}")
        if status in PERMANENT_FAILURES:
            return SendResult(message.id, "rejected", status, f"push service refused the message ({status})")
        retry_after = None
        if error.retry_after and str(error.retry_after).isdigit():
            retry_after = float(error.retry_after)
        return SendResult(message.id, "retry", status, f"push service answered {status}", retry_after)
    except requests.RequestException as error:
        return SendResult(message.id, "retry", None, f"{type(error).__name__} talking to the push service")
    return SendResult(message.id, "sent", getattr(response, "status_code", None))


def _strip_action_tokens(payload: str) -> str:
    """Keep the outbox free of live tokens once a message is settled (only their hashes stay stored)."""
    try:
        data = json.loads(payload)
    except ValueError:
        return "{}"
    if isinstance(data, dict) and "actions" in data:
        data["actions"] = {}
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _give_up(session: Session, row: PushOutbox, now: datetime, reason: str) -> None:
    row.dead_at = now
    row.payload = _strip_action_tokens(row.payload)
    record_audit_event(
        session,
        None,
        "push.message_dropped",
        "push_subscription",
        row.subscription_id,
        {"message_id": row.id, "attempts": row.attempts, "reason": safe_text(reason)[:120]},
    )


def record_results(session: Session, settings: SenderSettings, results: list[SendResult], report: DrainReport) -> None:
    """Write what happened to each message in one short write transaction."""
    settle_and_claim(session, settings, results, report, 0)


def settle_and_claim(
    session: Session, settings: SenderSettings, results: list[SendResult], report: DrainReport, limit: int
) -> list[ClaimedMessage]:
    """Record finished sends and claim up to ``limit`` due messages, in one write transaction.

    On SQLite every write transaction queues for the one write lock, so a sender that records and
    claims together waits for it half as often.
    """
    session.rollback()
    with write_intent():
        if results:
            _record(session, settings, results, report)
        claimed = _claim(session, settings, limit)
        session.commit()
    return claimed


def _record(session: Session, settings: SenderSettings, results: list[SendResult], report: DrainReport) -> None:
    """Write what happened to each message.

    Locks are taken in one order everywhere: the audit lock first (only when an audit event may be
    written, as requests do), then subscriptions by id (FOR NO KEY UPDATE, so requests queueing new
    messages for them are not blocked), then messages by id. Two senders recording at once, or a
    sender and a request, cannot deadlock.
    """
    results = sorted(results, key=lambda result: result.message_id)
    report.outcomes.extend(results)
    now = utcnow()
    if any(result.outcome != "sent" for result in results):
        lock_for_append(session, AUDIT_APPEND_LOCK)
    subscription_ids = session.scalars(
        sa.select(PushOutbox.subscription_id).where(PushOutbox.id.in_([r.message_id for r in results]))
    ).all()
    subscriptions = {
        s.id: s
        for s in session.scalars(
            sa.select(PushSubscription)
            .where(PushSubscription.id.in_(set(subscription_ids)))
            .order_by(PushSubscription.id)
            .with_for_update(key_share=True)
        )
    }
    rows = {
        row.id: row
        for row in session.scalars(
            sa.select(PushOutbox)
            .where(PushOutbox.id.in_([r.message_id for r in results]))
            .order_by(PushOutbox.id)
            .with_for_update()
        )
    }
    gone: dict[int, SendResult] = {}
    refused: dict[int, SendResult] = {}
    for result in results:
        row = rows.get(result.message_id)
        if row is None:  # unsubscribed while it was being sent
            continue
        subscription = subscriptions[row.subscription_id]
        row.last_error = result.error[:255]
        if result.outcome == "sent":
            row.sent_at = now
            row.payload = _strip_action_tokens(row.payload)
            subscription.last_success_at = now
            subscription.failure_count = 0
            report.sent += 1
        elif result.outcome == "gone":
            gone[subscription.id] = result
            report.gone += 1
        elif result.outcome == "refused":
            refused[subscription.id] = result
            report.refused += 1
        elif result.outcome == "rejected":
            subscription.failure_count += 1
            _give_up(session, row, now, result.error)
            report.dead += 1
        else:
            subscription.failure_count += 1
            _retry_or_give_up(session, settings, row, result, now, report)
    session.flush()
    for subscription_id, result in sorted(gone.items()):
        subscription = subscriptions[subscription_id]
        record_audit_event(
            session,
            None,
            "push.subscription_expired",
            "push_subscription",
            subscription.id,
            {"status": result.status, "user_id": subscription.user_id},
        )
        session.delete(subscription)
    for subscription_id, result in sorted(refused.items()):
        if subscription_id in gone:
            continue
        subscription = subscriptions[subscription_id]
        # Stored before today's checks (or altered since): it is never sent to, and goes with its messages.
        record_audit_event(
            session,
            None,
            "push.subscription_refused",
            "push_subscription",
            subscription.id,
            {"reason": safe_text(result.error)[:160], "user_id": subscription.user_id},
        )
        session.delete(subscription)
    session.flush()


def _retry_or_give_up(
    session: Session, settings: SenderSettings, row: PushOutbox, result: SendResult, now: datetime, report: DrainReport
) -> None:
    """A failed send: try again later (backing off, honouring Retry-After), or give up after the attempts or the TTL."""
    expired = row.created_at + timedelta(seconds=row.ttl) <= now
    if row.attempts >= settings.max_attempts or expired:
        _give_up(session, row, now, "too many attempts" if not expired else "its time to live ran out")
        report.dead += 1
        return
    delay = backoff(settings, row.attempts)
    if result.retry_after is not None:
        delay = max(delay, min(timedelta(seconds=result.retry_after), MAX_BACKOFF))
    row.next_attempt_at = now + delay
    report.retried += 1


def drain_once(session: Session, settings: SenderSettings, pool: ThreadPoolExecutor | None = None) -> DrainReport:
    """Claim what is due now, send it (in parallel when given a pool) and record each result."""
    report = DrainReport()
    claimed = claim_due(session, settings)
    report.claimed = len(claimed)
    if not claimed:
        return report
    if pool is None:
        record_results(session, settings, [send_message(m, settings) for m in claimed], report)
        return report
    pending: set[Future] = {pool.submit(send_message, m, settings) for m in claimed}
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        # Record what has finished at once: a hanging push service must not hold back the others.
        record_results(session, settings, [f.result() for f in done], report)
    return report


def drain_until_idle(session: Session, settings: SenderSettings, pool: ThreadPoolExecutor | None = None) -> DrainReport:
    """Drain repeatedly until nothing is due now (used by tests and `flask push-worker --once`)."""
    total = DrainReport()
    while True:
        report = drain_once(session, settings, pool)
        if not report.claimed:
            return total
        total.claimed += report.claimed
        total.sent += report.sent
        total.retried += report.retried
        total.gone += report.gone
        total.dead += report.dead
        total.refused += report.refused
        total.outcomes.extend(report.outcomes)


SETTLED_KEPT_FOR = timedelta(days=7)


def purge_settled(session: Session, kept_for: timedelta = SETTLED_KEPT_FOR) -> int:
    """Delete messages delivered or dropped more than ``kept_for`` ago, with one audit event saying so.

    The outbox is a queue, not a record: the in-app notice and the audit log keep what happened.
    """
    session.rollback()
    with write_intent():
        lock_for_append(session, AUDIT_APPEND_LOCK)
        cutoff = utcnow() - kept_for
        settled = sa.or_(PushOutbox.sent_at < cutoff, PushOutbox.dead_at < cutoff)
        deleted = session.execute(sa.delete(PushOutbox).where(settled).execution_options(synchronize_session=False))
        count = cast(sa.CursorResult[Any], deleted).rowcount or 0
        if count:
            record_audit_event(
                session, None, "push.outbox_purged", "push_outbox", "", {"count": count, "kept_days": kept_for.days}
            )
        session.commit()
    return count


def _next_look(due_in: float | None, room: int, unrecorded_since: float | None) -> float | None:
    """Seconds until the loop should look again (None: when woken or at the poll)."""
    if due_in is not None and due_in <= 0:
        # Due but taken by another sender a moment ago, or we are full (a finishing send wakes the loop).
        due_in = 0.01 if room > 0 else None
    if unrecorded_since is not None:
        until_record = max(0.0, RECORD_WITHIN - (time.monotonic() - unrecorded_since))
        due_in = until_record if due_in is None else min(due_in, until_record)
    return due_in


class PushWorker(OutboxWorker):
    """A sender loop: wakes on a commit that queued messages, on the next due retry, or every poll.

    In the process that commits, the after-commit hook sets ``wake``. A separate `flask push-worker`
    process hears commits through PostgreSQL LISTEN/NOTIFY; on SQLite it polls (a cheap indexed read)
    every ``poll_seconds``.

    Neither a lost database nor one bad message ends the loop: a database error (the connection
    terminated, the server restarting, SQLite locked for longer than its busy timeout) is logged, the
    session and the LISTEN connection are dropped, and the loop waits with capped exponential backoff
    before it connects again, listens again and drains what accumulated meanwhile.
    """

    name = "push sender"
    channel = NOTIFY_CHANNEL

    def __init__(
        self,
        app: Flask,
        wake: threading.Event | None = None,
        *,
        listen: bool = False,
        poll_seconds: float | None = None,
        own_process: bool = False,
    ) -> None:
        super().__init__(
            app,
            SenderSettings.from_app(app),
            wake or wake_event,
            listen=listen,
            poll_seconds=poll_seconds,
            own_process=own_process,
        )

    def _wait(self, listener: PostgresListener | None, sending: bool, due_in: float | None) -> None:
        """Sleep until woken, the next due retry or the poll: on LISTEN when idle, briefly while sends are in flight."""
        timeout = self.poll_seconds if due_in is None else min(self.poll_seconds, due_in)
        if listener is not None and not sending:
            listener.wait(min(timeout, 1.0))  # and look at stop_event every second
        elif listener is not None:
            self.wake.wait(min(timeout, 0.05))
        else:
            self.wake.wait(timeout)

    def run(self) -> None:
        """Pipeline the work: claim what is due while earlier sends are still in flight, and record
        results as they finish, so one hanging push service never holds up everyone else's messages."""
        from app.extensions import db

        capacity = self.settings.send_threads * 16
        inflight: set[Future] = set()
        next_purge = time.monotonic() + 60
        unrecorded_since: float | None = None
        with self.app.app_context(), ThreadPoolExecutor(self.settings.send_threads, thread_name_prefix="push-send") as pool:
            listener: PostgresListener | None = None
            try:
                while not self.stop_event.is_set():
                    self.wake.clear()
                    try:
                        listener = self.listen_if_wanted(listener)
                        if time.monotonic() >= next_purge:
                            next_purge = time.monotonic() + 3600
                            purge_settled(db.session())
                        finished = {future for future in inflight if future.done()}
                        if finished and unrecorded_since is None:
                            unrecorded_since = time.monotonic()
                        # A read first: claiming takes the write lock, which an idle look must not.
                        due_in = next_due_in(db.session())
                        room = capacity - len(inflight) + len(finished) if due_in is not None and due_in <= 0 else 0
                        # Results wait (briefly) for the next claim, so that one write transaction does both:
                        # on SQLite each write transaction queues for the single write lock.
                        record_due = unrecorded_since is not None and time.monotonic() - unrecorded_since >= RECORD_WITHIN
                        if room > 0 or record_due:
                            results = [future.result() for future in finished]
                            claimed = settle_and_claim(db.session(), self.settings, results, DrainReport(), room)
                            inflight -= finished  # only once recorded: a failed write retries them
                            unrecorded_since = None
                            for message in claimed:
                                future = pool.submit(send_message, message, self.settings)
                                future.add_done_callback(lambda _future: self.wake.set())
                                inflight.add(future)
                            if claimed:
                                self.recovered()
                                continue
                        self.recovered()
                        self._wait(listener, bool(inflight), _next_look(due_in, room, unrecorded_since))
                    except Exception as error:  # noqa: BLE001 (database or anything else: back off, carry on)
                        self.failed(error, listener)
                        listener = None
                if inflight:
                    wait(inflight)
                    try:
                        record_results(db.session(), self.settings, [f.result() for f in inflight], DrainReport())
                    except Exception:  # noqa: BLE001 (their leases run out and another sender retries them)
                        log.exception("push sender: could not record the last sends while stopping")
            finally:
                if listener is not None:
                    listener.close()
                db.session.remove()


_embedded = EmbeddedWorkers("lanyard-push-sender")


def start_embedded_worker(app: Flask) -> OutboxWorker:
    """Start this process's sender thread once (per process: a forked gunicorn worker starts its own)."""
    return _embedded.start(lambda: PushWorker(app))


def stop_embedded_worker(timeout: float = 5.0) -> None:
    _embedded.stop(timeout)
