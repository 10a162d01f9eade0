"""Logs without personal data: query strings (which can hold an IMEI search) never reach a log line."""

from __future__ import annotations

import json
import logging
import re

_QUERY = re.compile(r"(\"[A-Z]+ [^\"?\s]*)\?[^\"\s]*")
_LONG_DIGITS = re.compile(r"\d{14,}")


def redact(message: str) -> str:
    return _LONG_DIGITS.sub("[redacted]", _QUERY.sub(r"\1?[query]", message))


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
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
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(json_logs: bool) -> None:
    redacting = RedactingFilter()
    for name in ("werkzeug", "gunicorn.access", "gunicorn.error", "app", "lanyard"):
        logger = logging.getLogger(name)
        if redacting not in logger.filters:
            logger.addFilter(redacting)
    if json_logs:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root = logging.getLogger()
        root.handlers = [handler]
        root.setLevel(logging.INFO)
