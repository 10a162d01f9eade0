"""Errors answered as a page or as problem details, by where the request went.

Two kinds of fault get special care (issue 11):

- The database cannot be reached (refused, dropped mid-request, locked past busy_timeout, file not
  openable): the answer is 503 with Retry-After, from a page that itself needs no database, problem
  details on the API, and JSON on /healthz. It is logged as a warning with the request id.
- Anything else unexpected: Flask logs the traceback (see ``Lanyard.log_exception``, with the request
  id, path and method only: never the body or query string) and we answer 500 naming the request id,
  so the school's IT can find the log line.
"""

from __future__ import annotations

import logging
import sqlite3

import psycopg
from flask import Flask, current_app, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError

from app.extensions import db
from app.forms_support import refusal_problem, settle_refusal
from app.logging_setup import REQUEST_ID_HEADER, redact, request_id
from app.problems import problem
from app.services.errors import DomainError

RETRY_AFTER_SECONDS = 5
_AVOID_DATABASE = "lanyard.avoid_database"
# SQLite errors that mean "cannot use the database now", not "the code is wrong" (no such table, syntax).
_SQLITE_UNAVAILABLE = ("unable to open", "is locked", "disk i/o", "readonly database", "disk is full", "database is busy")
_DATABASE_ERRORS = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    sqlite3.OperationalError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
log = logging.getLogger("app")


def wants_problem_json() -> bool:
    return request.path.startswith("/api/")


def database_unavailable(error: BaseException) -> bool:
    """True when the error says the database cannot be used right now (worth trying again shortly)."""
    if isinstance(error, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True
    original: BaseException | None = error
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        original = error.orig
    if isinstance(original, psycopg.OperationalError | psycopg.InterfaceError):
        # Refused or lost connections, the server shutting down, a cancelled statement, a deadlock.
        return True
    if isinstance(original, sqlite3.OperationalError):
        text = str(original).lower()
        return any(part in text for part in _SQLITE_UNAVAILABLE)
    return False


def avoid_database() -> bool:
    """Whether this request is answering a fault (an outage, a 500): then nothing else may query the database."""
    return bool(request.environ.get(_AVOID_DATABASE))


def _rollback_quietly() -> None:
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001  (the connection may be gone; the session is removed at teardown anyway)
        log.warning("Rolling back after an error failed too (request id %s)", request_id(), exc_info=True)


def standalone_page(title: str, message: str, status: int, **extra):
    """An error page drawn without the base template, so it needs no database (no user, nav, settings)."""
    body = current_app.jinja_env.get_template("errors/standalone.html").render(
        title=title, message=message, request_id=request_id(), **extra
    )
    return current_app.response_class(body, status=status, mimetype="text/html")


# PostgreSQL's deadlock_detected, serialization_failure and lock_not_available: the transaction was
# rolled back whole and the same request may simply be sent again.
RETRYABLE_SQLSTATES = {"40P01", "40001", "55P03"}
CLASH_RETRY_AFTER_SECONDS = 1


def is_clash(error: BaseException) -> bool:
    """A clash with another writer (a deadlock, a serialisation failure, SQLite still locked after its wait)."""
    original = getattr(error, "orig", None) or error
    if getattr(original, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return True
    return isinstance(original, sqlite3.OperationalError) and "database is locked" in str(original)


def _database_clash(error: Exception):
    """Answer a clash with another writer with 503 and a short Retry-After, never a 500: nothing was changed."""
    _rollback_quietly()
    log.warning(
        "Database clash on %s %s (request id %s), the client is asked to retry: %s",
        request.method,
        request.path,
        request_id(),
        type(getattr(error, "orig", None) or error).__name__,
    )
    detail = "Lanyard was busy with another change at the same moment; nothing was changed. Please try again."
    if wants_problem_json():
        response = problem(503, "Busy, please try again", detail, "retry", request_id=request_id())
    else:
        request.environ[_AVOID_DATABASE] = True
        response = standalone_page("Lanyard was busy", detail, 503, retry=True)
    response.headers["Retry-After"] = str(CLASH_RETRY_AFTER_SECONDS)
    return response


def _database_error(error: Exception):
    if is_clash(error):
        return _database_clash(error)
    if not database_unavailable(error):
        raise error  # a fault in the code, not an outage: logged and answered as a 500
    request.environ[_AVOID_DATABASE] = True
    _rollback_quietly()
    text = str(getattr(error, "orig", None) or error).strip()
    first_line = redact(text.splitlines()[0]) if text else ""
    log.warning(
        "Database unavailable on %s %s (request id %s): %s: %s",
        request.method,
        request.path,
        request_id(),
        type(error).__name__,
        first_line,
    )
    detail = "The database cannot be reached just now; nothing was changed. Try again in a few seconds."
    if request.path == "/healthz":
        response = current_app.response_class(
            '{"status": "unavailable", "database": "unreachable"}\n', status=503, mimetype="application/json"
        )
    elif wants_problem_json():
        response = problem(503, "Service Unavailable", detail, "database-unavailable", request_id=request_id())
    else:
        response = standalone_page("Lanyard is unavailable for a moment", detail, 503, retry=True)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _http_error(error: HTTPException):
    if wants_problem_json():
        response = problem(error.code or 500, error.name, error.description or error.name if error.code != 404 else "Not found.")
    else:
        template = f"errors/{error.code}.html" if error.code in (400, 403, 404, 405, 413) else "errors/generic.html"
        response = current_app.make_response((render_template(template, error=error), error.code or 500))
    valid_methods = getattr(error, "valid_methods", None)
    if valid_methods:
        response.headers["Allow"] = ", ".join(sorted(valid_methods))
    return response


def _csrf_error(error: CSRFError):
    if wants_problem_json():
        return problem(
            403, "CSRF token missing or invalid", "Send the X-CSRFToken header from the page's meta tag.", "csrf-failed"
        )
    return render_template("errors/csrf.html"), 400


def _domain_error(error: DomainError):
    if wants_problem_json():
        return refusal_problem(error)
    settle_refusal(error)
    return render_template("errors/generic.html", error=error, message=error.message), error.status


def _server_error(error: InternalServerError):
    """Answer an unexpected fault. Flask has already logged it with its traceback (``log_exception``)."""
    original = getattr(error, "original_exception", None)
    if original is not None and database_unavailable(original):
        return _database_error(original)
    _rollback_quietly()
    request.environ[_AVOID_DATABASE] = True  # the fault may be the database's: draw nothing that queries it
    detail = "Something went wrong on our side; nothing was changed."
    if wants_problem_json():
        return problem(500, "Internal Server Error", detail, request_id=request_id())
    return standalone_page("Something went wrong", detail, 500)


def log_unhandled(app: Flask, exc_info) -> None:
    """The one log line of a 500: method, path (never the query string or body), request id, traceback."""
    app.logger.error("Unhandled error on %s %s (request id %s)", request.method, request.path, request_id(), exc_info=exc_info)


def _send_request_id(response):
    response.headers.setdefault(REQUEST_ID_HEADER, request_id() or "")
    return response


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DomainError, _domain_error)
    for error_class in _DATABASE_ERRORS:
        app.register_error_handler(error_class, _database_error)
    # A 500 handler rather than one for Exception: Flask then logs every unhandled error first (and
    # under tests, which propagate exceptions, the error still reaches the test).
    app.register_error_handler(InternalServerError, _server_error)
    app.after_request(_send_request_id)
