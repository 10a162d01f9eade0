"""The mail sender: drains the outbox after commit, so nothing is sent for a change that rolled back.

Each round has three short transactions and the SMTP conversation outside them all:
1. claim: due rows are leased (``next_attempt_at`` moved past the send timeout, the attempt counted)
   with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and ``BEGIN IMMEDIATE`` on SQLite, so several senders
   (threads or ``flask mail-worker`` processes) never take the same row;
2. prepare: a password reset becomes a message (the person looked up, the link made) in its own
   transaction, in the one lock order (links, audit, outbox row);
3. record: delivered; a temporary failure (4xx, the server down) retried with exponential backoff up
   to the attempt limit; a permanent one (5xx) dropped at once. Dropped messages are audited.
A sender that dies mid-send leaves its rows to fall due again when the lease ends.

Without an SMTP server, in development, messages are written to ``instance/dev-mail`` for the
``/dev/mail`` page instead of being sent.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.database import lock_for_append, write_intent
from app.models import MailOutbox
from app.outbox import EmbeddedWorkers, OutboxWorker, PostgresListener, exponential_backoff, seconds_until, wake_on_commit
from app.outbox import reconnect_delay as reconnect_delay  # part of this module's interface
from app.services.audit import AUDIT_APPEND_LOCK, record_audit_event
from app.services.mail import NOTIFY_CHANNEL, QUEUED_FLAG, mail_mode, prepare_password_reset, safe_text

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=1)
DEV_MAIL_DIR = "dev-mail"
DEV_MAIL_KEPT = 100
SETTLED_KEPT_FOR = timedelta(days=7)

# Set after any commit that queued mail, so this process's sender wakes at once.
wake_event = wake_on_commit(QUEUED_FLAG)


@dataclass(frozen=True)
class MailSettings:
    mode: str  # smtp or dev
    host: str = ""
    port: int = 587
    security: str = "starttls"  # starttls, tls or none
    user: str = ""
    password: str = ""
    sender: str = "lanyard@school.invalid"
    instance_path: str = ""
    timeout: float = 20.0
    max_attempts: int = 8
    backoff_seconds: float = 30.0
    poll_seconds: float = 5.0
    batch_size: int = 20
    reconnect_base_seconds: float = 0.5
    reconnect_cap_seconds: float = 30.0

    @classmethod
    def from_app(cls, app: Flask) -> MailSettings:
        config = app.config
        with app.app_context():
            mode = mail_mode()
        return cls(
            mode=mode,
            host=config.get("SMTP_HOST", ""),
            port=int(config.get("SMTP_PORT", 587)),
            security=config.get("SMTP_SECURITY", "starttls"),
            user=config.get("SMTP_USER", ""),
            password=config.get("SMTP_PASSWORD", ""),
            sender=config.get("MAIL_FROM", "lanyard@school.invalid"),
            instance_path=app.instance_path,
            timeout=float(config.get("MAIL_TIMEOUT_SECONDS", 20)),
            max_attempts=int(config.get("MAIL_MAX_ATTEMPTS", 8)),
            backoff_seconds=float(config.get("MAIL_BACKOFF_SECONDS", 30)),
            poll_seconds=float(config.get("MAIL_POLL_SECONDS", 5)),
            reconnect_base_seconds=float(config.get("MAIL_RECONNECT_BASE_SECONDS", 0.5)),
            reconnect_cap_seconds=float(config.get("MAIL_RECONNECT_CAP_SECONDS", 30)),
        )

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.timeout * 3 + 30)


@dataclass(frozen=True)
class ClaimedMail:
    id: int
    to_address: str
    subject: str
    text_body: str
    html_body: str
    message_id: str
    list_unsubscribe: str
    auto_submitted: bool
    from_name: str


@dataclass
class SendResult:
    message_id: int
    outcome: str  # sent, retry, failed (permanent)
    code: int | None = None
    error: str = ""


@dataclass
class DrainReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    outcomes: list[SendResult] = field(default_factory=list)


def backoff(settings: MailSettings, attempts: int) -> timedelta:
    """Exponential backoff: base, 2x base, 4x base, ... capped at an hour."""
    return exponential_backoff(settings.backoff_seconds, attempts, MAX_BACKOFF)


def _pending():
    return sa.and_(MailOutbox.sent_at.is_(None), MailOutbox.dead_at.is_(None))


def next_due_in(session: Session) -> float | None:
    """Seconds until the next pending message falls due (0 if one is due now), None if none is pending."""
    return seconds_until(session, sa.select(sa.func.min(MailOutbox.next_attempt_at)).where(_pending()))


def _from_name(session: Session) -> str:
    from flask import current_app

    from app.services.settings import get_setting

    return (str(get_setting(session, "school.name") or "")).strip() or current_app.config["SCHOOL_NAME"]


def _snapshot(row: MailOutbox, from_name: str) -> ClaimedMail:
    return ClaimedMail(
        id=row.id,
        to_address=row.to_address,
        subject=row.subject,
        text_body=row.text_body,
        html_body=row.html_body,
        message_id=row.message_id,
        list_unsubscribe=row.list_unsubscribe,
        auto_submitted=row.auto_submitted,
        from_name=from_name,
    )


def claim(session: Session, settings: MailSettings, limit: int | None = None) -> tuple[list[ClaimedMail], list[int]]:
    """Lease due messages to this sender in one short write transaction.

    Return the ready messages and the ids of password resets still to prepare.
    """
    session.rollback()
    with write_intent():
        now = utcnow()
        query = (
            sa.select(MailOutbox)
            .where(_pending(), MailOutbox.next_attempt_at <= now)
            .order_by(MailOutbox.id)
            .limit(limit or settings.batch_size)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = list(session.scalars(query))
        from_name = _from_name(session) if rows else ""
        ready, unprepared = [], []
        for row in rows:
            row.attempts += 1
            row.next_attempt_at = now + settings.lease
            if row.prepared:
                ready.append(_snapshot(row, from_name))
            else:
                unprepared.append(row.id)
        session.commit()
    return ready, unprepared


def prepare(session: Session, message_ids: list[int]) -> list[ClaimedMail]:
    """Turn leased password resets into messages, each in its own write transaction."""
    ready = []
    for message_id in message_ids:
        session.rollback()
        with write_intent():
            row = session.get(MailOutbox, message_id)
            if row is not None and not row.prepared and row.dead_at is None and prepare_password_reset(session, row):
                ready.append(_snapshot(row, _from_name(session)))
            session.commit()
    return ready


def build_message(mail: ClaimedMail, settings: MailSettings) -> EmailMessage:
    """The MIME message: plain text first, HTML as the alternative, and the headers every mail has."""
    message = EmailMessage()
    message["From"] = formataddr((mail.from_name, settings.sender))
    message["To"] = mail.to_address
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = mail.message_id
    if mail.auto_submitted:
        message["Auto-Submitted"] = "auto-generated"
    if mail.list_unsubscribe:
        message["List-Unsubscribe"] = mail.list_unsubscribe
    message.set_content(mail.text_body)
    message.add_alternative(mail.html_body, subtype="html")
    return message


def _connect(settings: MailSettings) -> smtplib.SMTP:
    if settings.security == "tls":
        connection: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=ssl.create_default_context()
        )
    else:
        connection = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        if settings.security == "starttls":
            connection.starttls(context=ssl.create_default_context())
    if settings.user:
        connection.login(settings.user, settings.password)
    return connection


def _classify(mail_id: int, code: int | None, what: str) -> SendResult:
    if code is not None and 500 <= code < 600:
        return SendResult(mail_id, "failed", code, f"the mail server refused it ({code}): {what}"[:255])
    return SendResult(mail_id, "retry", code, f"the mail server answered {code}: {what}"[:255] if code else what[:255])


def _send_one(connection: smtplib.SMTP, mail: ClaimedMail, settings: MailSettings) -> SendResult:
    try:
        message = build_message(mail, settings)
    except (ValueError, TypeError) as error:  # a header the email package will not write
        return SendResult(mail.id, "failed", None, f"the message could not be built: {type(error).__name__}")
    try:
        connection.send_message(message, from_addr=settings.sender, to_addrs=[mail.to_address])
    except smtplib.SMTPRecipientsRefused as error:
        code, reply = next(iter(error.recipients.values()), (None, b""))
        return _classify(mail.id, code, reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply))
    except smtplib.SMTPResponseException as error:
        text = error.smtp_error.decode(errors="replace") if isinstance(error.smtp_error, bytes) else str(error.smtp_error)
        return _classify(mail.id, error.smtp_code, text)
    return SendResult(mail.id, "sent")


def send_smtp(messages: list[ClaimedMail], settings: MailSettings) -> list[SendResult]:
    """Send a batch over one SMTP connection. Never raises: every failure is a message's result."""
    try:
        connection = _connect(settings)
    except (OSError, smtplib.SMTPException) as error:
        log.warning("mail sender: cannot reach %s:%s (%s); will retry", settings.host, settings.port, type(error).__name__)
        return [SendResult(m.id, "retry", None, f"{type(error).__name__} connecting to the mail server") for m in messages]
    results: list[SendResult] = []
    try:
        for index, mail in enumerate(messages):
            try:
                results.append(_send_one(connection, mail, settings))
            except (OSError, smtplib.SMTPException) as error:  # the connection broke: the rest wait too
                results += [SendResult(m.id, "retry", None, f"{type(error).__name__} while sending") for m in messages[index:]]
                break
    finally:
        try:
            connection.quit()
        except (OSError, smtplib.SMTPException):
            connection.close()
    return results


def dev_mail_dir(instance_path: str) -> Path:
    return Path(instance_path) / DEV_MAIL_DIR


def keep_for_development(messages: list[ClaimedMail], settings: MailSettings) -> list[SendResult]:
    """Development without SMTP: write each message where the /dev/mail page reads it."""
    folder = dev_mail_dir(settings.instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for mail in messages:
        try:
            data = build_message(mail, settings).as_bytes()
        except (ValueError, TypeError) as error:
            results.append(SendResult(mail.id, "failed", None, f"the message could not be built: {type(error).__name__}"))
            continue
        (folder / f"{utcnow():%Y%m%dT%H%M%S}-{mail.id:08d}.eml").write_bytes(data)
        results.append(SendResult(mail.id, "sent"))
    for old in sorted(folder.glob("*.eml"))[:-DEV_MAIL_KEPT]:
        old.unlink(missing_ok=True)
    return results


def send_messages(messages: list[ClaimedMail], settings: MailSettings) -> list[SendResult]:
    if not messages:
        return []
    try:
        if settings.mode == "smtp":
            return send_smtp(messages, settings)
        return keep_for_development(messages, settings)
    except Exception as error:  # noqa: BLE001 (a failure is the messages', never the sender's)
        log.exception("mail sender: sending failed; the messages will be retried")
        return [SendResult(m.id, "retry", None, f"{type(error).__name__} while sending") for m in messages]


def record(session: Session, settings: MailSettings, results: list[SendResult], report: DrainReport) -> None:
    """Write what happened to each message in one short write transaction (audit lock first, then the
    rows in id order, as everywhere)."""
    if not results:
        return
    results = sorted(results, key=lambda result: result.message_id)
    report.outcomes.extend(results)
    session.rollback()
    with write_intent():
        now = utcnow()
        if any(result.outcome != "sent" for result in results):
            lock_for_append(session, AUDIT_APPEND_LOCK)
        rows = {
            row.id: row
            for row in session.scalars(
                sa.select(MailOutbox)
                .where(MailOutbox.id.in_([r.message_id for r in results]))
                .order_by(MailOutbox.id)
                .with_for_update()
            )
        }
        for result in results:
            row = rows.get(result.message_id)
            if row is None or row.sent_at is not None or row.dead_at is not None:
                continue
            row.last_error = result.error[:255]
            if result.outcome == "sent":
                row.sent_at = now
                row.text_body = row.html_body = ""
                report.sent += 1
            elif result.outcome == "failed" or row.attempts >= settings.max_attempts:
                _give_up(session, row, now, result.error if result.outcome == "failed" else "too many attempts")
                report.dead += 1
            else:
                row.next_attempt_at = now + backoff(settings, row.attempts)
                report.retried += 1
        session.commit()


def _give_up(session: Session, row: MailOutbox, now: datetime, reason: str) -> None:
    row.dead_at = now
    row.text_body = row.html_body = ""
    record_audit_event(
        session,
        None,
        "mail.message_dropped",
        "user" if row.user_id else "",
        row.user_id or "",
        {"message_id": row.id, "kind": row.kind, "attempts": row.attempts, "reason": safe_text(reason)[:120]},
    )


def drain_once(session: Session, settings: MailSettings) -> DrainReport:
    """Claim what is due now, prepare resets, send, and record each result."""
    report = DrainReport()
    ready, unprepared = claim(session, settings)
    report.claimed = len(ready) + len(unprepared)
    if not report.claimed:
        return report
    ready += prepare(session, unprepared)
    record(session, settings, send_messages(ready, settings), report)
    return report


def drain_until_idle(session: Session, settings: MailSettings) -> DrainReport:
    """Drain repeatedly until nothing is due now (tests and `flask mail-worker --once`)."""
    total = DrainReport()
    while True:
        report = drain_once(session, settings)
        if not report.claimed:
            return total
        total.claimed += report.claimed
        total.sent += report.sent
        total.retried += report.retried
        total.dead += report.dead
        total.outcomes.extend(report.outcomes)


def purge_settled(session: Session, kept_for: timedelta = SETTLED_KEPT_FOR) -> int:
    """Delete messages sent or dropped more than ``kept_for`` ago (the outbox is a queue, not a record)."""
    session.rollback()
    with write_intent():
        lock_for_append(session, AUDIT_APPEND_LOCK)
        cutoff = utcnow() - kept_for
        settled = sa.or_(MailOutbox.sent_at < cutoff, MailOutbox.dead_at < cutoff)
        deleted = session.execute(sa.delete(MailOutbox).where(settled).execution_options(synchronize_session=False))
        count = cast(sa.CursorResult[Any], deleted).rowcount or 0
        if count:
            record_audit_event(
                session, None, "mail.outbox_purged", "mail_outbox", "", {"count": count, "kept_days": kept_for.days}
            )
        session.commit()
    return count


class MailWorker(OutboxWorker):
    """A sender loop: wakes on a commit that queued mail, on the next due retry, or every poll.

    Neither a lost database nor one bad message ends it: a failure is logged, the connections are
    dropped, and the loop waits with capped, jittered exponential backoff before it connects (and
    listens) again and sends what accumulated meanwhile.
    """

    name = "mail sender"
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
            app, MailSettings.from_app(app), wake or wake_event, listen=listen, poll_seconds=poll_seconds, own_process=own_process
        )

    def run(self) -> None:
        from app.extensions import db

        next_purge = 0.0
        with self.app.app_context():
            listener: PostgresListener | None = None
            try:
                while not self.stop_event.is_set():
                    self.wake.clear()
                    try:
                        listener = self.listen_if_wanted(listener)
                        now = utcnow().timestamp()
                        if now >= next_purge:
                            next_purge = now + 3600
                            purge_settled(db.session())
                        if drain_once(db.session(), self.settings).claimed:
                            self.recovered()
                            continue
                        due_in = next_due_in(db.session())
                        self.recovered()
                        timeout = self.poll_seconds if due_in is None else min(self.poll_seconds, max(due_in, 0.01))
                        if listener is not None:
                            listener.wait(min(timeout, 1.0))  # and look at stop_event every second
                        else:
                            self.wake.wait(timeout)
                    except Exception as error:  # noqa: BLE001 (database or anything else: back off, carry on)
                        self.failed(error, listener)
                        listener = None
            finally:
                if listener is not None:
                    listener.close()
                db.session.remove()


_embedded = EmbeddedWorkers("lanyard-mail-sender")


def start_embedded_worker(app: Flask) -> OutboxWorker:
    """Start this process's sender thread once (a forked gunicorn worker starts its own)."""
    return _embedded.start(lambda: MailWorker(app))


def stop_embedded_worker(timeout: float = 5.0) -> None:
    _embedded.stop(timeout)
