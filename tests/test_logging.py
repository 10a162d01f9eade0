"""Logs never hold personal data: no query strings, no IMEI-length numbers."""

import json
import logging

import pytest
from flask.logging import default_handler

from app.logging_setup import JsonFormatter, RedactingFilter, configure_logging, redact

IMEI = "490154203237518"


@pytest.fixture
def restored_logging():
    """configure_logging changes process-wide state: put the loggers and handlers back afterwards."""
    loggers = [logging.getLogger()] + [
        known for known in logging.Logger.manager.loggerDict.values() if isinstance(known, logging.Logger)
    ]
    saved = {logger: (list(logger.handlers), list(logger.filters), logger.level, logger.propagate) for logger in loggers}
    handler_filters = {handler: list(handler.filters) for logger in loggers for handler in logger.handlers}
    default_filters = list(default_handler.filters)
    yield
    for logger in [logging.getLogger()] + [
        known for known in logging.Logger.manager.loggerDict.values() if isinstance(known, logging.Logger)
    ]:
        handlers, filters, level, propagate = saved.get(logger, ([], [], logging.NOTSET, True))
        logger.handlers, logger.filters, logger.propagate = handlers, filters, propagate
        logger.setLevel(level)
    for handler, filters in handler_filters.items():
        handler.filters = filters
    default_handler.filters = default_filters


def _emit_from_everywhere(gunicorn_stream):
    gunicorn = logging.getLogger("gunicorn.error")
    gunicorn.propagate = False
    logging.getLogger("app.scheduler").warning("timed job failed for device %s", IMEI)
    logging.getLogger("app.push.worker").error("push for %s failed", f"imei {IMEI}")
    logging.getLogger("werkzeug").warning('"GET /office/devices?q=%s HTTP/1.1" 200 -', IMEI)
    logging.getLogger("sqlalchemy.pool").warning("connection for %s reset", IMEI)
    try:
        raise ValueError(f"IMEI {IMEI} refused")
    except ValueError:
        logging.getLogger("app.services.devices").exception("could not register")
    gunicorn.warning("worker saw %s", IMEI)


@pytest.mark.parametrize("json_logs", [False, True], ids=["text", "json"])
def test_records_from_any_logger_are_redacted_by_the_handler(restored_logging, capsys, json_logs):
    """Children of a filtered logger (app.scheduler, app.services.*) pass only its handlers, never its filter."""
    import io

    gunicorn_stream = io.StringIO()
    gunicorn_handler = logging.StreamHandler(gunicorn_stream)  # as gunicorn sets up its error log, before the app loads
    logging.getLogger("gunicorn.error").addHandler(gunicorn_handler)
    logging.getLogger("app").addHandler(default_handler)  # as Flask does when app.logger is first read
    configure_logging(json_logs=json_logs)
    _emit_from_everywhere(gunicorn_stream)

    written = capsys.readouterr().err
    assert IMEI not in written and IMEI not in gunicorn_stream.getvalue()
    assert "worker saw [redacted]" in gunicorn_stream.getvalue()
    lines = written.strip().splitlines()
    if json_logs:
        entries = [json.loads(line) for line in lines]
        assert {entry["logger"] for entry in entries} == {
            "app.scheduler",
            "app.push.worker",
            "werkzeug",
            "sqlalchemy.pool",
            "app.services.devices",
        }
        assert "ValueError: IMEI [redacted] refused" in entries[-1]["error"]
    else:
        # Another test in this worker may have set up JSON lines first; what matters here is the redaction.
        assert "timed job failed for device [redacted]" in written
        assert "push for imei [redacted] failed" in written
        assert "GET /office/devices?[query] HTTP/1.1" in written
        assert "ValueError: IMEI [redacted] refused" in written
        assert written.count("timed job failed") == 1, "Flask's own handler is taken off, so no line is written twice"


def test_configuring_twice_adds_no_second_handler(restored_logging, capsys):
    configure_logging(json_logs=False)
    configure_logging(json_logs=False)
    logging.getLogger("app.scheduler").warning("tick %s", IMEI)
    written = capsys.readouterr().err
    assert written.count("tick [redacted]") == 1 and IMEI not in written


def test_query_strings_and_long_numbers_are_redacted():
    line = '127.0.0.1 - - [25/Nov/2026] "GET /office/devices?q=490154203237518 HTTP/1.1" 200 -'
    cleaned = redact(line)
    assert "490154203237518" not in cleaned
    assert '"GET /office/devices?[query] HTTP/1.1"' in cleaned
    assert redact("device 490154203237518 lost") == "device [redacted] lost"


def test_the_filter_rewrites_records_and_json_lines_are_redacted():
    record = logging.LogRecord(
        "werkzeug", logging.INFO, __file__, 1, '"%s" %s', ("GET /t?imei=490154203237518 HTTP/1.1", 200), None
    )
    RedactingFilter().filter(record)
    assert "490154203237518" not in record.getMessage()
    assert "490154203237518" not in JsonFormatter().format(record)


def test_proxy_fix_trusts_only_the_configured_hops(tmp_path):
    from app import create_app

    def app_with(hops: int):
        return create_app(
            {
                "TESTING": True,
                "INSTANCE_PATH": str(tmp_path),
                "SECRET_KEY": "x" * 40,
                "SQLALCHEMY_DATABASE_URI": "sqlite://",
                "PROXY_FIX_HOPS": hops,
                "HSTS": True,
                "JSON_LOGS": False,
            }
        )

    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    behind_proxy = app_with(1).test_client().get("/api/v1/openapi.json", headers=forwarded)
    assert behind_proxy.headers["Strict-Transport-Security"].startswith("max-age=")
    direct = app_with(0).test_client().get("/api/v1/openapi.json", headers=forwarded)
    assert "Strict-Transport-Security" not in direct.headers
