"""Logs without personal data, each line of a request tagged with its request id.

Query strings (which can hold an IMEI search) never reach a log line, and long digit runs (IMEIs) are
redacted from messages and from tracebacks alike: an exception's message can carry what was typed.

The redacting filter sits on the handlers, which every record passes whichever logger made it: a
filter on a logger sees only records made by that very logger, never those of its children
(``app.scheduler``, ``app.push.worker``) passing through on their way up. It is also kept on
the named loggers, so a record is redacted (and tagged) before any handler added later sees it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid

from flask import has_request_context, request
from flask.logging import default_handler

_QUERY = re.compile(r"(\"[A-Z]+ [^\"?\s]*)\?[^\"\s]*")
_LONG_DIGITS = re.compile(r"\d{14,}")
# An incoming X-Request-ID (from the reverse proxy) is kept when it is a plain token of sane length.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")
REQUEST_ID_HEADER = "X-Request-ID"
_ENVIRON_KEY = "lanyard.request_id"
_TRACEBACK = logging.Formatter()


def redact(message: str) -> str:
    return _LONG_DIGITS.sub("[redacted]", _QUERY.sub(r"\1?[query]", message))


def request_id() -> str | None:
    """This request's id: a sane incoming X-Request-ID, else one made up; None outside a request.

    Kept in the WSGI environ, which lives exactly as long as the request.
    """
    if not has_request_context():
        return None
    environ = request.environ
    found = environ.get(_ENVIRON_KEY)
    if found is None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        sane = _SANE_REQUEST_ID.fullmatch(incoming) and not _LONG_DIGITS.search(incoming)
        found = environ[_ENVIRON_KEY] = incoming if sane else uuid.uuid4().hex
    return found


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set, so every handler writes the redacted traceback.
            record.exc_text = redact(_TRACEBACK.formatException(record.exc_info))
        if not hasattr(record, "request_id"):
            record.request_id = request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line, for production log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        found = getattr(record, "request_id", None) or request_id()
        if found:
            entry["request_id"] = found
        if record.exc_text:
            entry["error"] = redact(record.exc_text)
        elif record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


class TextFormatter(logging.Formatter):
    """Plain lines for a terminal or the journal, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("[%(asctime)s] %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        found = getattr(record, "request_id", None)
        if not found:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first} (request id {found}){newline}{rest}"


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when the record comes (as logging's last resort does)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


def _with_redaction(handler: logging.Handler, redacting: RedactingFilter) -> None:
    if not any(isinstance(known, RedactingFilter) for known in handler.filters):
        handler.addFilter(redacting)


def _every_logger() -> list[logging.Logger]:
    return [logging.getLogger()] + [
        known for known in logging.Logger.manager.loggerDict.values() if isinstance(known, logging.Logger)
    ]


def configure_logging(json_logs: bool) -> None:
    """One Lanyard handler on the root logger (JSON lines or text); every handler redacts.

    Handlers that others set up (gunicorn's error and access logs, a test runner's capture) get the
    filter too. Flask's own handler on the app's logger is taken off, as the root handler now writes
    those lines (it would otherwise write each twice).
    """
    redacting = RedactingFilter()
    for name in ("werkzeug", "gunicorn.access", "gunicorn.error", "app", "lanyard"):
        logger = logging.getLogger(name)
        if not any(isinstance(known, RedactingFilter) for known in logger.filters):
            logger.addFilter(redacting)
    root = logging.getLogger()
    if json_logs:
        handler: logging.Handler = StderrHandler()
        handler.setFormatter(JsonFormatter())
        root.handlers = [handler]
        root.setLevel(logging.INFO)
    elif not any(isinstance(known, StderrHandler) for known in root.handlers):
        handler = StderrHandler()
        handler.setFormatter(TextFormatter())
        root.addHandler(handler)
    _with_redaction(default_handler, redacting)
    for logger in _every_logger():
        if default_handler in logger.handlers:
            logger.removeHandler(default_handler)
        for known in logger.handlers:
            _with_redaction(known, redacting)
