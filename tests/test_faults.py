"""Faults answer clearly and leave a trace (issue 11, item 8).

The database unreachable (a closed port, a dropped database, a SQLite file that cannot be opened), cut
mid-request or locked past busy_timeout: pages, the API and /healthz answer 503 with Retry-After, and
the error page never queries the database. Any other unexpected error is a 500 whose log line has the
traceback and the request id, and never the query string or the body.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from app import create_app
from app.errors import database_unavailable
from app.extensions import db
from app.logging_setup import JsonFormatter, RedactingFilter
from app.models import Role
from app.services.api_tokens import TOKEN_PREFIX
from tests.conftest import _pg_execute, _pg_url, _test_config
from tests.equipment_factories import page_csrf_token
from tests.factories import make_imei, make_user, sign_in

IMEI = "490154203237518"


def _assert_unavailable_everywhere(client) -> None:
    health = client.get("/healthz")
    assert health.status_code == 503 and health.headers["Retry-After"] == "5"
    assert health.mimetype == "application/json" and health.get_json()["status"] == "unavailable"
    api = client.get("/api/v1/me", headers={"Authorization": f"Bearer {TOKEN_PREFIX}{'x' * 40}"})  # looked up first
    assert api.status_code == 503 and api.headers["Retry-After"] == "5"
    assert api.mimetype == "application/problem+json"
    assert api.get_json()["status"] == 503 and api.get_json()["request_id"] == api.headers["X-Request-ID"]
    page = client.get("/sign-in")
    assert page.status_code == 503 and page.headers["Retry-After"] == "5" and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "Lanyard is unavailable for a moment" in text and page.headers["X-Request-ID"] in text
    assert page.headers["Cache-Control"] == "no-store" and "default-src 'self'" in page.headers["Content-Security-Policy"]


@pytest.fixture
def unreachable_url(backend, tmp_path):
    """A database address that cannot be used: a closed port (PostgreSQL), a file in no folder (SQLite)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'no-such-folder' / 'lanyard.db'}"
    return "postgresql+psycopg://postgres@127.0.0.1:1/lanyard?connect_timeout=3"


def test_an_unreachable_database_is_503_with_retry_after_on_pages_api_and_healthz(unreachable_url, tmp_path, caplog):
    app = create_app(_test_config(unreachable_url, tmp_path))
    with caplog.at_level(logging.WARNING, logger="app"):
        _assert_unavailable_everywhere(app.test_client())
    logged = [r for r in caplog.records if r.getMessage().startswith("Database unavailable on GET /healthz")]
    assert logged and "request id " in logged[0].getMessage()
    with app.app_context():
        db.engine.dispose()


def test_a_dropped_postgresql_database_is_503(backend, tmp_path):
    if backend != "postgresql":
        # SQLite's equivalent: the file's folder removed under the running app.
        folder = tmp_path / "data"
        folder.mkdir()
        app = create_app(_test_config(f"sqlite:///{folder / 'lanyard.db'}", tmp_path))
        folder.rmdir()
        _assert_unavailable_everywhere(app.test_client())
        return
    name = f"lanyard_gone_{uuid.uuid4().hex[:12]}"
    _pg_execute(f'CREATE DATABASE "{name}"')
    app = create_app(_test_config(_pg_url(name).replace("postgresql://", "postgresql+psycopg://"), tmp_path))
    _pg_execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    _assert_unavailable_everywhere(app.test_client())
    with app.app_context():
        db.engine.dispose()


def _cut(session) -> None:
    """Cut this session's connection as a network failure or a server restart would, then use it."""
    if session.get_bind().dialect.name == "postgresql":
        pid = session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        _pg_execute(f"SELECT pg_terminate_backend({pid})")
        session.execute(sa.text("SELECT 1"))
        pytest.fail("the terminated connection still answered")
    raise sa_exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("disk I/O error"))


def test_a_connection_cut_mid_request_is_503_not_500(app, client, monkeypatch):
    from app.api import me as me_api
    from app.main import routes as main_routes

    person = make_user(name="Mr B Clarke")
    sign_in(client, person)
    monkeypatch.setattr(main_routes.devices, "devices_of", lambda session, user, **kw: _cut(session))
    page = client.get("/")  # the session lookup has already worked; the page's own query fails
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    assert "Lanyard is unavailable for a moment" in page.get_data(as_text=True)
    monkeypatch.setattr(me_api, "unread_count", lambda session, user: _cut(session))
    api = client.get("/api/v1/me")
    assert api.status_code == 503 and api.mimetype == "application/problem+json" and api.headers["Retry-After"] == "5"
    monkeypatch.undo()
    assert client.get("/").status_code == 200  # the pool hands out a good connection again


def test_the_error_page_never_queries_the_database(app, client, monkeypatch):
    from app.main import routes as main_routes

    sign_in(client, make_user(name="Mr B Clarke"))
    statements = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    def fail(session, user, **kw):
        # From here on (the session lookup is done) nothing may touch the database again.
        sa.event.listen(db.engine, "before_cursor_execute", record)
        raise sa_exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("unable to open database file"))

    monkeypatch.setattr(main_routes.devices, "devices_of", fail)
    try:
        page = client.get("/")
    finally:
        if sa.event.contains(db.engine, "before_cursor_execute", record):
            sa.event.remove(db.engine, "before_cursor_execute", record)
    assert page.status_code == 503 and "Lanyard is unavailable for a moment" in page.get_data(as_text=True)
    assert statements == []


def test_database_locked_past_busy_timeout_is_503_to_retry_soon(app, client, monkeypatch):
    from app.main import routes as main_routes

    sign_in(client, make_user(name="Mr B Clarke"))
    locked = sa_exc.OperationalError("UPDATE x", {}, sqlite3.OperationalError("database is locked"))
    monkeypatch.setattr(main_routes.devices, "devices_of", lambda *a, **kw: (_ for _ in ()).throw(locked))
    response = client.get("/")
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert "Lanyard was busy" in response.get_data(as_text=True)


def test_which_database_errors_mean_unavailable():
    def wrapped(original):
        return sa_exc.OperationalError("SELECT 1", {}, original)

    for message in (
        "unable to open database file",
        "database is locked",
        "disk I/O error",
        "attempt to write a readonly database",
    ):
        assert database_unavailable(wrapped(sqlite3.OperationalError(message))), message
    assert database_unavailable(wrapped(psycopg.OperationalError("connection refused")))
    assert database_unavailable(sa_exc.DisconnectionError()) and database_unavailable(sa_exc.TimeoutError())
    # A mistake in the code is not an outage: it stays a logged 500.
    assert not database_unavailable(wrapped(sqlite3.OperationalError("no such table: widgets")))
    assert not database_unavailable(sa_exc.ProgrammingError("SELECT", {}, Exception("syntax error")))
    assert not database_unavailable(RuntimeError("boom"))


def test_a_programming_error_from_the_database_is_a_logged_500(app, client, caplog):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    app.add_url_rule(
        "/test-bad-sql", "test_bad_sql", lambda: str(db.session.execute(sa.text("SELECT * FROM no_such_table")).all())
    )
    with caplog.at_level(logging.ERROR, logger="app"):
        response = client.get("/test-bad-sql")
    assert response.status_code == 500
    assert any("no_such_table" in (r.exc_text or "") for r in caplog.records)


# 500s and request ids ---------------------------------------------------------------------------------


def _boom():
    raise RuntimeError(f"could not handle device {IMEI}")


@pytest.fixture
def failing_app(app):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the 500 handler answers
    app.add_url_rule("/test-boom", "test_boom", _boom, methods=["GET", "POST"])
    app.add_url_rule("/api/v1/test-boom", "test_api_boom", _boom, methods=["GET", "POST"])
    return app


def test_a_500_logs_its_traceback_with_the_request_id_and_nothing_sent(failing_app, client, caplog):
    secret_query = f"q={make_imei()}"
    token = page_csrf_token(client, "/sign-in")
    with caplog.at_level(logging.ERROR, logger="app"):
        response = client.post(f"/test-boom?{secret_query}", data={"csrf_token": token, "imei": "the body never reaches a log"})
    assert response.status_code == 500
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) >= 8 and request_id in response.get_data(as_text=True)  # shown as a reference
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == f"Unhandled error on POST /test-boom (request id {request_id})"
    assert record.request_id == request_id
    assert (
        "Traceback (most recent call last)" in record.exc_text
        and "RuntimeError: could not handle device [redacted]" in record.exc_text
    )
    everything = caplog.text + record.exc_text
    assert IMEI not in everything and secret_query not in everything and "q=" not in everything
    assert "the body never reaches a log" not in everything
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == request_id and "RuntimeError" in line["error"] and IMEI not in json.dumps(line)


def test_a_500_on_the_api_is_problem_details_with_the_request_id(failing_app, client, caplog):
    with caplog.at_level(logging.ERROR, logger="app"):
        response = client.get("/api/v1/test-boom", headers={"X-Request-ID": "proxy-abc-12345"})
    assert response.status_code == 500 and response.mimetype == "application/problem+json"
    assert response.get_json()["request_id"] == "proxy-abc-12345" == response.headers["X-Request-ID"]
    assert "(request id proxy-abc-12345)" in caplog.text


def test_every_response_has_a_request_id_and_odd_incoming_ones_are_replaced(app, client):
    made_up = client.get("/healthz")
    assert made_up.status_code == 200 and made_up.get_json()["status"] == "ok"
    assert len(made_up.headers["X-Request-ID"]) == 32
    assert (
        client.get("/healthz", headers={"X-Request-ID": "req-2026-11-25-0001"}).headers["X-Request-ID"] == "req-2026-11-25-0001"
    )
    for odd in ("short", "x" * 65, "has spaces in it", "<script>alert(1)</script>", f"imei-{IMEI}"):
        answered = client.get("/healthz", headers={"X-Request-ID": odd}).headers["X-Request-ID"]
        assert answered != odd and len(answered) == 32


def test_every_log_line_of_a_request_carries_its_id(app, client, caplog, monkeypatch):
    from app.main import routes as main_routes

    person = make_user(Role.OFFICE, name="Ms Office")
    sign_in(client, person)
    logger = logging.getLogger("app")

    def noisy(session, user, **kw):
        logger.warning("looking up devices")
        return []

    monkeypatch.setattr(main_routes.devices, "devices_of", noisy)
    with caplog.at_level(logging.WARNING, logger="app"):
        response = client.get("/", headers={"X-Request-ID": "trace-me-please"})
    assert response.status_code == 200
    [record] = [r for r in caplog.records if r.getMessage() == "looking up devices"]
    assert record.request_id == "trace-me-please"
    assert json.loads(JsonFormatter().format(record))["request_id"] == "trace-me-please"


def test_tracebacks_are_redacted_by_the_filter_outside_requests_too():
    try:
        raise ValueError(f"IMEI {IMEI} refused")
    except ValueError:
        import sys

        record = logging.LogRecord("app", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    RedactingFilter().filter(record)
    assert IMEI not in record.exc_text and "ValueError: IMEI [redacted] refused" in record.exc_text
    assert IMEI not in logging.Formatter().format(record)
