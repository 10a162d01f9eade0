"""No one message, and no lost database, ends the push sender: in the thread and in `flask push-worker`."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
import requests
import sqlalchemy as sa
from cryptography.exceptions import InvalidKey
from py_vapid import VapidException
from pywebpush import WebPushException

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, PushOutbox, PushSubscription, Role
from app.push import worker as push_sender
from app.push.worker import PushWorker
from app.services.notifications import notify
from tests.conftest import PG_ADMIN_URL
from tests.factories import make_user
from tests.push.conftest import drain, subscribe_browser

ROOT = Path(__file__).resolve().parents[2]

FAILURES = [
    VapidException("Missing 'aud' from claims"),
    ValueError("Invalid audience"),
    TypeError("expected bytes"),
    KeyError("keys"),
    InvalidKey(),
    UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    sa.exc.OperationalError("SELECT 1", {}, Exception("database went away")),
    requests.exceptions.InvalidURL("Failed to parse"),
    WebPushException("Push failed: no response"),
    RuntimeError("anything at all"),
]


def _notify(users, title="Hello"):
    with write_intent():
        notify(db.session, users, kind="test.notice", title=title)
        db.session.commit()


def _fail_for(monkeypatch, endpoint: str, error: BaseException) -> list[str]:
    """Make webpush raise ``error`` for ``endpoint`` only; the rest go to the local push service."""
    real = push_sender.webpush
    seen: list[str] = []

    def flaky(subscription_info, **kwargs):
        seen.append(subscription_info["endpoint"])
        if subscription_info["endpoint"] == endpoint:
            raise error
        return real(subscription_info=subscription_info, **kwargs)

    monkeypatch.setattr(push_sender, "webpush", flaky)
    return seen


def test_any_exception_while_sending_retries_that_message_only(push_service, sender_settings, frozen_clock, monkeypatch, caplog):
    """Each kind of failure (py_vapid, pywebpush, requests, cryptography, even a database error raised
    inside the send) becomes a retry with backoff for that one message, logged with its traceback."""
    unlucky, lucky = make_user(Role.STAFF), make_user(Role.STAFF)
    bad_browser, _ = subscribe_browser(push_service, unlucky)
    subscribe_browser(push_service, lucky)
    for number, error in enumerate(FAILURES):
        _fail_for(monkeypatch, bad_browser.endpoint, error)
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="app.push.worker"):
            _notify([unlucky, lucky], title=f"Round {number}")
            report = drain(sender_settings)
        assert report.sent == 1 and report.retried == 1, (error, report)
        assert [m["title"] for m in push_service.messages()].count(f"Round {number}") == 1
        db.session.expire_all()
        row = db.session.scalar(
            sa.select(PushOutbox).where(PushOutbox.sent_at.is_(None), PushOutbox.dead_at.is_(None)).order_by(PushOutbox.id.desc())
        )
        if isinstance(error, requests.RequestException | WebPushException):
            # What the push service or the network answered: an ordinary retry, no traceback needed.
            assert row.last_error
        else:
            [record] = [r for r in caplog.records if "failed; it will be retried" in r.getMessage()]
            assert record.exc_info is not None and record.exc_info[1] is error
            assert row.last_error == f"{type(error).__name__} while sending"
        assert row.next_attempt_at == frozen_clock.now + push_sender.backoff(sender_settings, 1)
    # Once the failure clears, every retried message goes out at its time.
    monkeypatch.undo()
    frozen_clock.advance(seconds=10)
    assert drain(sender_settings).sent == len(FAILURES)
    assert push_service.refusals == []


def test_a_message_that_keeps_failing_is_dropped_at_the_limit(push_service, sender_settings, frozen_clock, monkeypatch):
    user = make_user(Role.STAFF)
    browser, subscription_id = subscribe_browser(push_service, user)
    _fail_for(monkeypatch, browser.endpoint, VapidException("Missing 'aud' from claims"))
    _notify([user])
    for _ in range(sender_settings.max_attempts):
        drain(sender_settings)
        frozen_clock.advance(hours=1)
    db.session.expire_all()
    row = db.session.scalar(sa.select(PushOutbox))
    assert row.dead_at is not None and row.attempts == sender_settings.max_attempts
    assert db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "push.message_dropped")) is not None
    assert db.session.get(PushSubscription, subscription_id) is not None  # the browser itself stays


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://127.0.0.1:5250\\@fcm.googleapis.com/x",
        "https://user:pass@fcm.googleapis.com/x",
        "https://169.254.169.254/latest/meta-data",
        "https://fcm.googleapis.com:8443/x",
    ],
)
def test_a_stored_subscription_that_fails_the_checks_is_removed_and_never_sent_to(
    push_service, sender_settings, monkeypatch, caplog, endpoint
):
    """Stored before the checks were tightened: the sender checks again, logs, drops it, carries on."""
    user = make_user(Role.STAFF)
    good_browser, _ = subscribe_browser(push_service, user)
    with write_intent():
        stale = PushSubscription(
            user_id=user.id, endpoint=endpoint, p256dh=good_browser.p256dh, auth=good_browser.auth, user_agent="Old"
        )
        db.session.add(stale)
        db.session.commit()
    stale_id = stale.id
    seen = _fail_for(monkeypatch, "never", RuntimeError("unused"))
    _notify([user], title="Still delivered")

    with caplog.at_level(logging.WARNING, logger="app.push.worker"):
        report = drain(sender_settings)

    assert report.refused == 1 and report.sent == 1
    assert seen == [good_browser.endpoint]  # nothing was ever posted to the stale endpoint
    assert [m["title"] for m in push_service.messages()] == ["Still delivered"]
    db.session.expire_all()
    assert db.session.get(PushSubscription, stale_id) is None
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(PushOutbox).where(PushOutbox.subscription_id == stale_id)) == 0
    )
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "push.subscription_refused"))
    assert event.subject_id == str(stale_id) and "endpoint" in event.details
    assert any(f"subscription {stale_id} is not usable" in r.getMessage() for r in caplog.records)


def test_the_worker_thread_carries_on_after_a_message_raises(push_app, push_service, monkeypatch):
    push_app.config["PUSH_POLL_SECONDS"] = 0.05
    unlucky, lucky = make_user(Role.STAFF), make_user(Role.STAFF)
    bad_browser, _ = subscribe_browser(push_service, unlucky)
    subscribe_browser(push_service, lucky)
    _fail_for(monkeypatch, bad_browser.endpoint, VapidException("Missing 'aud' from claims"))
    worker = PushWorker(push_app, threading.Event())
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        _notify([unlucky], title="Poison")
        time.sleep(0.5)
        _notify([lucky], title="After the poison")
        worker.wake.set()
        deliveries = push_service.wait_for(1, timeout=5)
        assert [d.message["title"] for d in deliveries] == ["After the poison"]
        assert thread.is_alive()
    finally:
        worker.stop()
        thread.join(10)
    assert not thread.is_alive()
    db.session.expire_all()
    poisoned = db.session.scalar(sa.select(PushOutbox).where(PushOutbox.sent_at.is_(None)))
    assert poisoned.last_error == "VapidException while sending" and poisoned.dead_at is None


def test_the_worker_backs_off_and_recovers_from_database_errors(push_app, push_service, monkeypatch):
    """Every query the worker makes fails for a while (as when the database is unreachable): it keeps
    trying with growing waits, then drains what accumulated, without being restarted."""
    push_app.config.update(PUSH_POLL_SECONDS=0.05, PUSH_RECONNECT_BASE_SECONDS=0.05, PUSH_RECONNECT_CAP_SECONDS=0.2)
    user = make_user(Role.STAFF)
    subscribe_browser(push_service, user)
    outage = threading.Event()
    outage.set()
    real_next_due_in = push_sender.next_due_in

    def unreachable(session):
        if outage.is_set():
            raise sa.exc.OperationalError(
                "SELECT min(next_attempt_at)", {}, Exception("server closed the connection unexpectedly")
            )
        return real_next_due_in(session)

    monkeypatch.setattr(push_sender, "next_due_in", unreachable)
    worker = PushWorker(push_app, threading.Event())
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        for n in range(5):
            _notify([user], title=f"Queued during the outage {n}")
        time.sleep(0.6)
        assert worker.database_failures >= 3 and push_service.requests_seen == 0
        outage.clear()
        deliveries = push_service.wait_for(5, timeout=10)
        assert len(deliveries) == 5 and thread.is_alive()
        assert worker.reconnects == 1 and worker.database_failures == 0
    finally:
        worker.stop()
        thread.join(10)


def test_reconnect_delays_double_up_to_the_cap_with_jitter(sender_settings):
    delays = [push_sender.reconnect_delay(sender_settings, n) for n in range(1, 12)]
    assert 0.25 <= delays[0] <= 0.5
    assert all(delay <= sender_settings.reconnect_cap_seconds for delay in delays)
    assert delays[-1] >= sender_settings.reconnect_cap_seconds / 2
    assert push_sender.reconnect_delay(sender_settings, 10_000) <= sender_settings.reconnect_cap_seconds


# A real outage: PostgreSQL ends every connection of the worker; SQLite is locked past its busy timeout.


def _terminate_connections(database_url: str) -> int:
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
        ).fetchall()
    return len(rows)


def _sqlite_path(database_url: str) -> str:
    return database_url.removeprefix("sqlite:///")


def _wait_until(predicate, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def test_the_worker_thread_recovers_from_a_real_outage(push_app, push_service, database_url, backend):
    """PostgreSQL: every connection of the database is terminated, the LISTEN one included, and later
    commits still wake the worker at once. SQLite: the database stays locked past the busy timeout."""
    user = make_user(Role.STAFF)
    subscribe_browser(push_service, user)
    if backend == "postgresql":
        push_app.config["PUSH_POLL_SECONDS"] = 30  # only a renewed LISTEN can explain prompt sends afterwards
        worker = PushWorker(push_app, threading.Event(), listen=True)
    else:
        push_app.config["PUSH_POLL_SECONDS"] = 0.1
        worker = PushWorker(push_app, threading.Event())
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    try:
        if backend == "postgresql":
            thread.start()
            time.sleep(0.5)
            _notify([user], title="Before")
            assert len(push_service.wait_for(1, timeout=5)) == 1
            assert _terminate_connections(database_url) >= 1
            _wait_until(lambda: worker.reconnects >= 1, 10, "the worker never came back")
            started = time.monotonic()
            for n in range(20):
                _notify([user], title=f"After {n}")
            deliveries = push_service.wait_for(21, timeout=15)
            assert time.monotonic() - started < 10  # woken by NOTIFY, not by the 30 s poll
        else:
            for n in range(20):
                _notify([user], title=f"After {n}")
            locker = sqlite3.connect(_sqlite_path(database_url), isolation_level=None)
            locker.execute("BEGIN IMMEDIATE")
            thread.start()
            _wait_until(lambda: worker.database_failures >= 1, 15, "the worker never hit the lock")
            locker.execute("ROLLBACK")
            locker.close()
            deliveries = push_service.wait_for(20, timeout=15)
            assert worker.reconnects == 1
        assert len(deliveries) == (21 if backend == "postgresql" else 20) and thread.is_alive()
    finally:
        worker.stop()
        thread.join(10)
    assert not thread.is_alive()
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PushOutbox).where(PushOutbox.sent_at.is_(None))) == 0


def _start_cli_worker(push_app, push_service, database_url, tmp_path) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LANYARD_")}
    env.update(
        LANYARD_DATABASE_URL=database_url,
        LANYARD_INSTANCE_PATH=push_app.instance_path,  # the same VAPID key as the test's push service expects
        LANYARD_ENV="testing",
        LANYARD_SCHEDULER="0",
        LANYARD_JSON_LOGS="0",
        LANYARD_PUSH_CONTACT=push_app.config["PUSH_CONTACT"],
        LANYARD_PUSH_EXTRA_HOSTS=push_service.host,
        LANYARD_PUSH_TIMEOUT_SECONDS="2",
        SECRET_KEY="test-worker",
        PYTHONPATH=str(ROOT),
    )
    with open(tmp_path / "push-worker.log", "w") as log_file:  # the child keeps its own copy of the handle
        return subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "flask", "--app", "wsgi", "push-worker", "--poll", "0.1"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def test_flask_push_worker_survives_the_database_going_away(push_app, push_service, database_url, backend, tmp_path):
    """`flask push-worker` as its own process: PostgreSQL terminates its connections (the LISTEN one
    included), or SQLite stays locked past the busy timeout; the process stays up and drains the outbox."""
    user = make_user(Role.STAFF)
    subscribe_browser(push_service, user)
    log_path = tmp_path / "push-worker.log"
    locker = None
    if backend == "postgresql":
        worker = _start_cli_worker(push_app, push_service, database_url, tmp_path)
        _notify([user], title="Before")
        assert len(push_service.wait_for(1, timeout=30)) == 1, log_path.read_text()
        assert _terminate_connections(database_url) >= 1
        for n in range(30):
            _notify([user], title=f"After {n}")
        expected = 31
    else:
        for n in range(30):
            _notify([user], title=f"After {n}")
        locker = sqlite3.connect(_sqlite_path(database_url), isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")  # held past the worker's 5 s busy timeout
        worker = _start_cli_worker(push_app, push_service, database_url, tmp_path)
        expected = 30
    try:
        _wait_until(lambda: "lost the database" in log_path.read_text(), 30, "the worker never lost the database")
        if locker is not None:
            locker.execute("ROLLBACK")
            locker.close()
        deliveries = push_service.wait_for(expected, timeout=30)
        assert len(deliveries) == expected, log_path.read_text()
        assert worker.poll() is None, log_path.read_text()
        _wait_until(lambda: "sending resumes" in log_path.read_text(), 10, "no log line says sending resumed")
    finally:
        worker.terminate()
        worker.wait(15)
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PushOutbox).where(PushOutbox.sent_at.is_(None))) == 0
