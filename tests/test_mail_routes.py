"""The pages around email: "Forgot your password?", the account page's choices, the sender waking on
commit, and the development-only /dev/mail page (absent in production)."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from app import create_app
from app.database import write_intent
from app.extensions import db
from app.mail.worker import MailSettings, MailWorker, drain_until_idle
from app.models import AuditEvent, MailPreference, Role
from app.services import mail
from tests.conftest import _test_config, csrf_token
from tests.factories import make_user, sign_in
from tests.mail_server import MailServer


@pytest.fixture
def smtp(app):
    server = MailServer()
    server.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=server.port, SMTP_SECURITY="none", MAIL_FROM="lanyard@school.test")
    yield server
    server.stop()


def test_the_sign_in_page_offers_a_password_reset(client, smtp):
    page = client.get("/sign-in").get_data(as_text=True)
    assert 'href="/forgot-password"' in page
    form = client.get("/forgot-password")
    assert form.status_code == 200 and "Email me a link" in form.get_data(as_text=True)


def test_without_mail_the_sign_in_page_sends_people_to_the_office(client):
    """With no SMTP server (outside development) nothing could be emailed: no link promising one."""
    page = client.get("/sign-in").get_data(as_text=True)
    assert 'href="/forgot-password"' not in page and "Ask the school office" in page
    form = client.get("/forgot-password")
    assert form.status_code == 200 and "does not send email" in form.get_data(as_text=True)
    assert "Email me a link" not in form.get_data(as_text=True)
    token = csrf_token(client, "/sign-in")
    assert client.post("/forgot-password", data={"email": "a@school.test", "csrf_token": token}).status_code == 404


def test_forgot_password_refuses_what_is_not_an_address(client, smtp):
    token = csrf_token(client, "/forgot-password")
    response = client.post("/forgot-password", data={"email": "not an address", "csrf_token": token})
    assert response.status_code == 422


def test_the_account_page_offers_the_kinds_for_a_persons_roles_and_saves_them(app, client):
    office = make_user(Role.OFFICE)
    sign_in(client, office)
    page = client.get("/account").get_data(as_text=True)
    assert "Email me about" in page
    assert 'value="device_lost" checked' in page and 'value="loan_reminder" checked' in page
    assert 'value="audit_digest"' not in page and 'value="approval_waiting"' not in page
    token = csrf_token(client, "/account")
    response = client.post("/account/email", data={"kind": ["loan_reminder"], "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/account#email")
    assert 'value="device_lost">' in client.get("/account").get_data(as_text=True)
    stored = db.session.scalars(sa.select(MailPreference)).all()
    assert [(p.user_id, p.kind, p.enabled) for p in stored] == [(office.id, "device_lost", False)]
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "mail.preferences_changed"))
    assert event is not None and "device_lost:off" in event.details
    refused = client.post("/account/email", data={"kind": ["invitation"], "csrf_token": token})
    assert refused.status_code == 302
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MailPreference)) == 1


def test_preferences_need_a_signed_in_person_and_the_csrf_token(client):
    assert client.post("/account/email", data={"kind": ["device_lost"]}).status_code in (302, 400)
    sign_in(client, make_user())
    assert client.post("/account/email", data={"kind": ["device_lost"]}).status_code == 400


def test_the_sender_wakes_when_a_commit_queues_mail(app, smtp):
    person = make_user()
    wake = threading.Event()
    postgres = db.engine.dialect.name == "postgresql"
    worker = MailWorker(app, wake, listen=postgres, poll_seconds=30)
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)  # the loop is idle, waiting (on PostgreSQL, listening)
        with write_intent():
            mail.queue_invitation(db.session, person, "https://lanyard.test/set-password/x")
            db.session.commit()
        if not postgres:
            # In one process the after-commit hook wakes the module's event; this worker has its own.
            from app.mail.worker import wake_event

            assert wake_event.is_set()
            wake.set()
        deadline = time.monotonic() + 10
        while not smtp.inbox.to(person.email) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert smtp.inbox.to(person.email), "the sender did not wake"
    finally:
        worker.stop()
        thread.join(10)


def _app(database_url, tmp_path, **overrides):
    instance = tmp_path / "instance-dev"
    instance.mkdir(exist_ok=True)
    return create_app({**_test_config(database_url, instance), "MAIL_WORKER": False, **overrides})


def test_development_without_smtp_shows_sent_mail_at_dev_mail(database_url, tmp_path):
    application = _app(database_url, tmp_path, LANYARD_ENV="development", SMTP_HOST="")
    with application.app_context():
        person = make_user(name="Ms Dev")
        with write_intent():
            assert mail.queue_invitation(db.session, person, "https://lanyard.test/set-password/abc") is not None
            db.session.commit()
        settings = MailSettings.from_app(application)
        assert settings.mode == "dev"
        assert drain_until_idle(db.session, settings).sent == 1
        client = application.test_client()
        index = client.get("/dev/mail")
        assert index.status_code == 200 and "Your Lanyard account at Lanyard School" in index.get_data(as_text=True)
        name = next(path.stem for path in (tmp_path / "instance-dev" / "dev-mail").glob("*.eml"))
        page = client.get(f"/dev/mail/{name}").get_data(as_text=True)
        assert 'href="https://lanyard.test/set-password/abc"' in page and "Auto-Submitted" not in page
        assert client.get("/dev/mail/nothing-here").status_code == 404
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize(
    "overrides", [{"LANYARD_ENV": "production"}, {"LANYARD_ENV": "development", "SMTP_HOST": "smtp.school.test"}]
)
def test_dev_mail_is_not_there_in_production_or_with_a_mail_server(database_url, tmp_path, overrides):
    application = _app(database_url, tmp_path, **overrides)
    assert not any(rule.rule.startswith("/dev/") for rule in application.url_map.iter_rules())
    with application.app_context():
        assert application.test_client().get("/dev/mail").status_code == 404
        db.session.remove()
        db.engine.dispose()


def test_my_data_lists_email_choices_and_messages_without_their_bodies(app, client, smtp):
    person = make_user()
    with write_intent():
        mail.queue_invitation(db.session, person, "https://lanyard.test/set-password/secret-link")
        db.session.commit()
    sign_in(client, person)
    download = client.get("/my-data/download")
    data = download.get_json()
    assert data["email"]["choices"] == {"loan_reminder": True}
    assert [m["kind"] for m in data["email"]["messages"]] == ["invitation"]
    assert "secret-link" not in download.get_data(as_text=True)


def _terminate_connections(database_url: str) -> int:
    import psycopg

    from tests.conftest import PG_ADMIN_URL

    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        return len(
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
            ).fetchall()
        )


def _wait_until(predicate, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def test_the_sender_survives_the_database_going_away(app, smtp, database_url, backend):
    """PostgreSQL: every connection is terminated (LISTEN too) and later commits still wake the sender.
    SQLite: the database stays locked past the busy timeout; the sender backs off and carries on."""
    import sqlite3

    app.config.update(MAIL_RECONNECT_BASE_SECONDS=0.05, MAIL_RECONNECT_CAP_SECONDS=0.2)
    person = make_user()

    def queue(n: int) -> None:
        with write_intent():
            for index in range(n):
                mail.queue_invitation(db.session, person, f"https://lanyard.test/set-password/{index}")
            db.session.commit()

    postgres = backend == "postgresql"
    worker = MailWorker(app, threading.Event(), listen=postgres, poll_seconds=30 if postgres else 0.1)
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    try:
        if postgres:
            thread.start()
            time.sleep(0.5)
            queue(1)
            _wait_until(lambda: len(smtp.inbox.received) == 1, 5, "the first message never arrived")
            assert _terminate_connections(database_url) >= 1
            _wait_until(lambda: worker.reconnects >= 1, 10, "the sender never came back")
            started = time.monotonic()
            queue(5)
            _wait_until(lambda: len(smtp.inbox.received) == 6, 10, "the sender did not wake after the outage")
            assert time.monotonic() - started < 8  # woken by NOTIFY, not by the 30 s poll
        else:
            queue(5)
            locker = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
            locker.execute("BEGIN IMMEDIATE")
            thread.start()
            _wait_until(lambda: worker.database_failures >= 1, 15, "the sender never hit the lock")
            locker.execute("ROLLBACK")
            locker.close()
            _wait_until(lambda: len(smtp.inbox.received) == 5, 15, "the sender did not carry on")
            _wait_until(lambda: worker.reconnects == 1, 5, "the sender never said it recovered")
        assert thread.is_alive()
    finally:
        worker.stop()
        thread.join(10)
    assert not thread.is_alive()
