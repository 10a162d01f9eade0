"""SQLite's write lock covers a request's write only (issue 13 item 3).

A real file database and two requests on two threads, each with its own connection: request A is held
still at a chosen point, and request B (a real POST through the app, with the app's own busy wait) or a
bare connection asking for the write lock with no wait at all, tells whether A holds the lock there.

- held in authentication (a cookie session's lookup, an API token's) and while drawing a page after a
  refusal or a form that failed validation, A holds no lock: B's write commits while A waits;
- held just after the first read inside the service, A holds the lock: nobody can write between the
  service's read and its write (the read-decide-write stays race-safe).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from flask import template_rendered
from sqlalchemy import event

from app import web
from app.database import write_intent
from app.extensions import db
from app.models import Role, User
from app.services import accounts, api_tokens
from tests.conftest import csrf_token
from tests.factories import make_user, sign_in
from tests.permission_factories import Browser

pytestmark = pytest.mark.sqlite_only

WAIT = 30  # seconds; a step that takes longer has failed (A never reached its pause, or B hung)


class Pause:
    """Hold request A at one point until the test lets it go; only A's thread is ever held."""

    def __init__(self) -> None:
        self.thread_name = "request-a"
        self.reached = threading.Event()
        self.go = threading.Event()

    def here(self) -> None:
        if threading.current_thread().name != self.thread_name or self.reached.is_set():
            return
        self.reached.set()
        assert self.go.wait(WAIT), "the test never let request A go on"


@contextmanager
def request_a(pause: Pause, send: Callable[[], object]) -> Iterator[dict]:
    """Send A on its own thread, wait until it is held, yield (the test acts as B), then let A finish."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["response"] = send()
        except BaseException as error:  # noqa: BLE001  (reported below)
            outcome["error"] = error

    thread = threading.Thread(target=run, name=pause.thread_name)
    thread.start()
    try:
        assert pause.reached.wait(WAIT), f"request A never reached its pause: {outcome}"
        yield outcome
    finally:
        pause.go.set()
        thread.join(WAIT)
    assert not thread.is_alive(), "request A never finished"
    assert "error" not in outcome, outcome["error"]


def _signed_in_admin(app) -> tuple[Browser, str]:
    browser = Browser(app)
    sign_in(browser, make_user(Role.ADMIN))
    return browser, csrf_token(browser, "/admin/staff/invite")


def _invite(browser: Browser, token: str, email: str, name: str = "New Colleague"):
    return browser.post(
        "/admin/staff/invite", data={"csrf_token": token, "display_name": name, "email": email, "staff_type": "employee"}
    )


def _b_writes_meanwhile(app) -> None:
    """Request B: an admin invites someone, through the app (which waits up to its busy timeout for the lock)."""
    browser, token = _signed_in_admin(app)
    response = _invite(browser, token, "while-a-waits@school.test", "Written While A Waits")
    assert response.status_code == 302 and "/link" in response.location, (
        f"B could not write while A was held: {response.status_code}"
    )
    assert _invited("while-a-waits@school.test")


def _invited(email: str) -> bool:
    db.session.rollback()  # a fresh snapshot: what the requests committed
    found = db.session.scalar(sa.select(User.id).where(User.email == email)) is not None
    db.session.rollback()
    return found


def _lock_is_free(app) -> bool:
    """Ask for the write lock on a connection of our own, without waiting a moment."""
    connection = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        assert "locked" in str(error)
        return False
    else:
        connection.execute("ROLLBACK")
        return True
    finally:
        connection.close()


@pytest.fixture
def admin_a(app):
    browser, token = _signed_in_admin(app)
    db.session.rollback()
    return browser, token


def test_a_post_held_in_its_session_lookup_lets_another_write_commit(app, admin_a, monkeypatch):
    pause = Pause()
    real = web.live_session

    def looked_up_then_held(*args, **kwargs):
        found = real(*args, **kwargs)  # the lookup's query has run: its transaction is open
        pause.here()
        return found

    monkeypatch.setattr(web, "live_session", looked_up_then_held)
    browser, token = admin_a
    with request_a(pause, lambda: _invite(browser, token, "a@school.test")) as outcome:
        assert _lock_is_free(app)
        _b_writes_meanwhile(app)
    assert outcome["response"].status_code == 302 and "/link" in outcome["response"].location
    assert _invited("a@school.test")


def test_an_api_call_held_in_its_token_lookup_lets_another_write_commit(app, monkeypatch):
    owner = make_user()
    with write_intent():
        _token, secret = api_tokens.create_token(db.session, owner, "MIS sync")
        db.session.commit()
    pause = Pause()
    real = web.user_for_token

    def looked_up_then_held(*args, **kwargs):
        found = real(*args, **kwargs)
        pause.here()
        return found

    monkeypatch.setattr(web, "user_for_token", looked_up_then_held)
    script = Browser(app)
    send = lambda: script.post(  # noqa: E731
        "/api/v1/devices",
        json={"kind": "camera", "make": "Canon", "model": "G7"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    with request_a(pause, send) as outcome:
        assert _lock_is_free(app)
        _b_writes_meanwhile(app)
    assert outcome["response"].status_code == 201, outcome["response"].get_data(as_text=True)


@pytest.mark.parametrize(
    "refusal",
    [
        pytest.param({"email": "taken@school.test"}, id="refused-by-the-service"),
        pytest.param({"email": "new@school.test", "name": ""}, id="form-failed-validation"),
    ],
)
def test_a_refused_post_drawing_its_form_again_lets_another_write_commit(app, admin_a, monkeypatch, refusal):
    make_user(email="taken@school.test")
    db.session.rollback()
    pause = Pause()

    def drawn_then_held(_sender, template, context, **_extra):
        if template.name == "admin/invite.html":
            pause.here()  # the whole page is drawn: every query of the layout has run

    template_rendered.connect(drawn_then_held, app)
    browser, token = admin_a
    try:
        with request_a(pause, lambda: _invite(browser, token, refusal["email"], refusal.get("name", "Someone"))) as outcome:
            assert _lock_is_free(app)
            _b_writes_meanwhile(app)
    finally:
        template_rendered.disconnect(drawn_then_held, app)
    assert outcome["response"].status_code == 422
    assert not _invited("new@school.test")


def test_the_write_lock_is_held_from_the_services_first_read_to_its_commit(app, admin_a, monkeypatch):
    """A held just after the service's first query: a writer asking for the lock without waiting is refused."""
    pause = Pause()
    in_service = threading.local()
    statements: list[str] = []
    real = accounts.create_user

    def create_user(*args, **kwargs):
        in_service.active = True
        try:
            return real(*args, **kwargs)
        finally:
            in_service.active = False

    def after_execute(_conn, _cursor, statement, *_args) -> None:
        if getattr(in_service, "active", False) and not statements:
            statements.append(statement)
            pause.here()

    monkeypatch.setattr(accounts, "create_user", create_user)
    event.listen(db.engine, "after_cursor_execute", after_execute)
    browser, token = admin_a
    try:
        with request_a(pause, lambda: _invite(browser, token, "raced@school.test")) as outcome:
            assert not _lock_is_free(app), "another writer could slip in between the service's read and its write"
    finally:
        event.remove(db.engine, "after_cursor_execute", after_execute)
    assert statements and statements[0].lstrip().upper().startswith("SELECT"), statements
    assert outcome["response"].status_code == 302 and "/link" in outcome["response"].location
    assert _invited("raced@school.test")
