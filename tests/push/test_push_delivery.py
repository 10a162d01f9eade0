"""Delivery through a local push service that verifies VAPID and decrypts: nothing lost, nothing doubled."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, Notification, PushOutbox, PushSubscription, Role
from app.outbox import PostgresListener
from app.push import worker as push_sender
from app.push.worker import PushWorker, drain_until_idle
from app.services.notifications import notify
from app.services.settings import set_setting
from tests.factories import make_imei, make_user
from tests.push.conftest import drain, subscribe_browser


def _notify(users, **fields):
    with write_intent():
        notices = notify(db.session, users, kind=fields.pop("kind", "test.notice"), title=fields.pop("title", "Hello"), **fields)
        db.session.commit()
    return notices


def test_a_notice_becomes_an_encrypted_signed_push_without_the_imei(push_service, sender_settings, frozen_clock):
    office = make_user(Role.OFFICE)
    _browser, subscription_id = subscribe_browser(push_service, office)
    imei = make_imei()
    _notify(
        [office],
        kind="device.reported_lost",
        title="Mr B reported a smartphone lost",
        body=f"iPhone 13, IMEI {imei}.",
        url="/office/devices/7",
    )

    report = drain(sender_settings)

    assert report.sent == 1 and push_service.refusals == []
    [delivery] = push_service.deliveries
    message = delivery.message
    assert message["title"] == "Mr B reported a smartphone lost"
    assert message["url"] == "/office/devices/7"
    assert message["kind"] == "device.reported_lost"
    assert message["body"].endswith(imei[-4:] + ".")
    assert imei not in delivery.message["body"] and not re.search(r"\d{14,}", str(message))
    assert "actions" not in message
    assert delivery.claims["sub"] == "mailto:office@school.invalid"
    assert delivery.headers["urgency"] == "normal" and int(delivery.headers["ttl"]) > 0
    row = db.session.scalar(sa.select(PushOutbox))
    assert row.sent_at is not None and row.attempts == 1 and row.dead_at is None
    assert db.session.get(PushSubscription, subscription_id).last_success_at is not None


def test_the_settings_page_push_contact_signs_the_vapid_claim(push_service, sender_settings):
    office = make_user(Role.OFFICE)
    subscribe_browser(push_service, office)
    with write_intent():
        set_setting(db.session, None, "push.contact", "office@st-marys.sch.uk")
        db.session.commit()
    push_service.expected_sub = "mailto:office@st-marys.sch.uk"
    _notify([office])
    assert drain(sender_settings).sent == 1 and push_service.refusals == []
    assert push_service.deliveries[0].claims["sub"] == "mailto:office@st-marys.sch.uk"


def test_each_browser_of_a_person_gets_the_push(push_service, sender_settings):
    head = make_user(Role.APPROVER)
    subscribe_browser(push_service, head)
    subscribe_browser(push_service, head)
    _notify([head])
    drain(sender_settings)
    assert len({d.endpoint for d in push_service.deliveries}) == 2


@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_subscription_is_deleted(push_service, sender_settings, status):
    user = make_user(Role.STAFF)
    browser, subscription_id = subscribe_browser(push_service, user)
    push_service.script(browser.endpoint, [status])
    _notify([user])

    report = drain(sender_settings)

    assert report.gone == 1 and push_service.deliveries == []
    assert db.session.get(PushSubscription, subscription_id) is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PushOutbox)) == 0
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "push.subscription_expired"))
    assert event.subject_id == str(subscription_id)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 1  # the in-app notice stays


def test_server_errors_and_timeouts_retry_with_backoff_then_deliver(push_service, sender_settings, frozen_clock):
    user = make_user(Role.STAFF)
    browser, subscription_id = subscribe_browser(push_service, user)
    push_service.script(browser.endpoint, [500, "hang", 201])
    _notify([user], title="Your request was approved")

    first = drain(sender_settings)
    assert first.retried == 1 and push_service.deliveries == []
    row = db.session.scalar(sa.select(PushOutbox))
    assert row.next_attempt_at == frozen_clock.now + push_sender.backoff(sender_settings, 1)
    assert drain(sender_settings).claimed == 0  # not due yet

    frozen_clock.advance(seconds=5)
    started = time.monotonic()
    second = drain(sender_settings)
    assert second.retried == 1 and time.monotonic() - started < 3  # the hang ended at the send timeout
    db.session.expire_all()
    assert db.session.scalar(sa.select(PushOutbox)).last_error.startswith(("ReadTimeout", "Timeout", "ConnectionError"))

    frozen_clock.advance(seconds=10)
    third = drain(sender_settings)
    assert third.sent == 1
    [delivery] = push_service.deliveries
    assert delivery.message["title"] == "Your request was approved"
    db.session.expire_all()
    row = db.session.scalar(sa.select(PushOutbox))
    assert row.attempts == 3 and row.sent_at is not None
    subscription = db.session.get(PushSubscription, subscription_id)
    assert subscription.failure_count == 0 and subscription.last_success_at is not None


def test_retries_stop_at_the_limit_and_the_drop_is_audited(push_service, sender_settings, frozen_clock):
    user = make_user(Role.STAFF)
    browser, subscription_id = subscribe_browser(push_service, user)
    push_service.script(browser.endpoint, [500] * 10)
    _notify([user])
    for _ in range(sender_settings.max_attempts):
        drain(sender_settings)
        frozen_clock.advance(hours=1)
    db.session.expire_all()
    row = db.session.scalar(sa.select(PushOutbox))
    assert row.dead_at is not None and row.sent_at is None and row.attempts == sender_settings.max_attempts
    assert drain(sender_settings).claimed == 0
    assert db.session.get(PushSubscription, subscription_id).failure_count == sender_settings.max_attempts
    assert db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "push.message_dropped")) is not None


def test_a_rolled_back_transaction_sends_nothing(push_service, sender_settings):
    user = make_user(Role.STAFF)
    subscribe_browser(push_service, user)
    push_sender.wake_event.clear()
    with write_intent():
        notify(db.session, [user], kind="test.notice", title="Never sent")
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PushOutbox)) == 1
        db.session.rollback()

    assert not push_sender.wake_event.is_set()
    report = drain(sender_settings)
    assert report.claimed == 0 and push_service.requests_seen == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PushOutbox)) == 0


def test_a_request_that_fails_after_notifying_sends_nothing(push_app, push_service, sender_settings, client):
    """Through a real request: the device service notifies the office, then the request is refused."""
    from tests.conftest import csrf_token
    from tests.factories import make_device, sign_in

    office = make_user(Role.OFFICE)
    subscribe_browser(push_service, office)
    owner = make_user(Role.STAFF)
    device = make_device(owner)
    other = make_user(Role.STAFF)
    sign_in(client, other)
    # A duplicate IMEI notifies the office and is refused; the refusal (and its notice) is kept by design,
    # so the office does hear about it: exactly once.
    response = client.post(
        "/api/v1/devices",
        json={"kind": "smartphone", "make": "Apple", "model": "iPhone", "imei1": device.imei1},
        headers={"X-CSRFToken": csrf_token(client, "/")},
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    drain(sender_settings)
    assert [m["kind"] for m in push_service.messages()] == ["device.duplicate_imei"]

    # A request that errors after notify() rolls everything back: no outbox row survives.
    with write_intent():
        notify(db.session, [office], kind="test.notice", title="Doomed")
        db.session.rollback()
    assert drain(sender_settings).claimed == 0
    assert len(push_service.deliveries) == 1


def test_two_workers_draining_at_once_never_send_a_message_twice(push_app, push_service, sender_settings):
    people = [make_user(Role.STAFF) for _ in range(3)]
    for person in people:
        subscribe_browser(push_service, person)
        subscribe_browser(push_service, person)
    for n in range(10):
        _notify(people, title=f"Message {n}")
    expected = 10 * 3 * 2
    push_service.default_delay = 0.002
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with push_app.app_context(), ThreadPoolExecutor(3) as pool:
                start.wait()
                for _ in range(5):
                    drain_until_idle(db.session, sender_settings, pool)
                db.session.remove()
        except BaseException as error:  # noqa: BLE001 (reported to the test below)
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    deliveries = push_service.deliveries
    keys = [(d.endpoint, d.message["notice_id"]) for d in deliveries]
    assert len(keys) == expected
    assert len(set(keys)) == expected, "a message was sent twice"
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PushOutbox).where(PushOutbox.sent_at.is_(None))) == 0
    assert set(db.session.scalars(sa.select(PushOutbox.attempts))) == {1}


def test_the_embedded_worker_wakes_when_a_commit_queues_a_push(push_app, push_service):
    push_app.config["PUSH_POLL_SECONDS"] = 30  # so only the after-commit wake-up can explain a prompt send
    user = make_user(Role.STAFF)
    subscribe_browser(push_service, user)
    worker = PushWorker(push_app)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        time.sleep(0.2)  # let it reach its wait
        started = time.monotonic()
        _notify([user], title="Prompt")
        [delivery] = push_service.wait_for(1, timeout=5)
        assert delivery.message["title"] == "Prompt"
        assert delivery.received_at - started < 2
    finally:
        worker.stop()
        thread.join(5)
    assert not thread.is_alive()


LONG_POLL = 30  # seconds: far beyond the 2 s a delivery is allowed below


def test_a_separate_worker_process_is_woken_by_the_commit(push_app, push_service, backend, monkeypatch):
    """`flask push-worker` in its own process: LISTEN/NOTIFY on PostgreSQL, a short poll on SQLite.

    On PostgreSQL nothing but the NOTIFY sent with the commit may wake the worker: it polls every 30 s, its
    wake event is its own (not the one this process's commits set), and its LISTEN wait, which otherwise
    comes back every second to look at the stop flag, waits the whole poll too. Without `pg_notify` in
    the outbox this test fails.
    """
    push_app.config["PUSH_POLL_SECONDS"] = LONG_POLL
    if backend == "postgresql":
        real_wait = PostgresListener.wait
        monkeypatch.setattr(PostgresListener, "wait", lambda listener, _timeout: real_wait(listener, LONG_POLL))
    user = make_user(Role.STAFF)
    subscribe_browser(push_service, user)
    worker = PushWorker(push_app, threading.Event(), listen=True, poll_seconds=LONG_POLL if backend == "postgresql" else 0.02)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        time.sleep(0.3)  # let it reach its wait (LISTEN is in place)
        started = time.monotonic()
        _notify([user], title="From another process")
        [delivery] = push_service.wait_for(1, timeout=5)
        assert delivery.message["title"] == "From another process"
        assert delivery.received_at - started < 2
    finally:
        worker.stop()
        if backend == "postgresql":  # its LISTEN wait hears only a notification: send one so it sees the stop
            with db.engine.connect() as connection:
                connection.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": push_sender.NOTIFY_CHANNEL})
                connection.commit()
        thread.join(10)
    assert not thread.is_alive()


def test_a_hanging_push_service_does_not_hold_up_other_messages(push_app, push_service):
    push_app.config.update(PUSH_TIMEOUT_SECONDS=3, PUSH_POLL_SECONDS=30)
    stuck, waiting = make_user(Role.STAFF), make_user(Role.STAFF)
    stuck_browser, _ = subscribe_browser(push_service, stuck)
    subscribe_browser(push_service, waiting)
    push_service.script(stuck_browser.endpoint, ["hang"])
    worker = PushWorker(push_app, threading.Event())
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        _notify([stuck], title="Stuck")
        time.sleep(0.3)  # the first send is now hanging
        started = time.monotonic()
        worker.wake.set()
        _notify([waiting], title="Not held up")
        worker.wake.set()
        [delivery] = push_service.wait_for(1, timeout=2)
        assert delivery.message["title"] == "Not held up" and delivery.received_at - started < 1
    finally:
        worker.stop()
        thread.join(10)
    db.session.expire_all()
    stuck_row = db.session.scalar(sa.select(PushOutbox).where(PushOutbox.sent_at.is_(None)))
    assert stuck_row.attempts == 1 and stuck_row.last_error  # timed out, recorded, waiting for its retry


def test_settled_messages_are_purged_after_a_week_and_the_purge_is_audited(push_service, sender_settings, frozen_clock):
    user = make_user(Role.STAFF)
    subscribe_browser(push_service, user)
    _notify([user], title="Old")
    drain(sender_settings)
    _notify([user], title="Pending")
    assert push_sender.purge_settled(db.session) == 0
    frozen_clock.advance(days=8)
    assert push_sender.purge_settled(db.session) == 1
    remaining = db.session.scalars(sa.select(PushOutbox)).all()
    assert len(remaining) == 1 and remaining[0].sent_at is None  # the undelivered one stays
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "push.outbox_purged"))
    assert event is not None and '"count":1' in event.details
