"""Logs without personal data, each line of a request tagged with its request id.

Query strings (which can hold an IMEI search) never reach a log line, and long digit runs (IMEIs) are
redacted from messages and from tracebacks alike: an exception's message can carry what was typed.
"""

from __future__ import annotations

import json
import logging
import re
import uuid

from flask import has_request_context, request

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
        if record.exc_info or record.exc_text:
            entry["error"] = redact(record.exc_text or self.formatException(record.exc_info))
        return json.dumps(entry)


def configure_logging(json_logs: bool) -> None:
    redacting = RedactingFilter()
    for name in ("werkzeug", "gunicorn.access", "gunicorn.error", "app", "lanyard"):
        logger = logging.getLogger(name)
        if not any(isinstance(known, RedactingFilter) for known in logger.filters):
            logger.addFilter(redacting)
    if json_logs:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        # On the handler too: records from any logger (sqlalchemy, push, scheduler) pass through it.
        handler.addFilter(redacting)
        root = logging.getLogger()
        root.handlers = [handler]
        root.setLevel(logging.INFO)
