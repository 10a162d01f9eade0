"""Logs never hold personal data: no query strings, no IMEI-length numbers."""

import logging

from app.logging_setup import JsonFormatter, RedactingFilter, redact


def test_query_strings_and_long_numbers_are_redacted():
    line = '127.0.0.1 - - [25/Nov/2026] "GET /office/devices?q=490154203237518 HTTP/1.1" 200 -'
    cleaned = redact(line)
    assert "490154203237518" not in cleaned
    assert '"GET /office/devices?[query] HTTP/1.1"' in cleaned
    assert redact("device 490154203237518 lost") == "device [redacted] lost"


def test_the_filter_rewrites_records_and_json_lines_are_redacted():
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '"%s" %s', ("GET /t?imei=490154203237518 HTTP/1.1", 200), None)
    RedactingFilter().filter(record)
    assert "490154203237518" not in record.getMessage()
    assert "490154203237518" not in JsonFormatter().format(record)


def test_proxy_fix_trusts_only_the_configured_hops(tmp_path):
    from app import create_app

    def app_with(hops: int):
        return create_app(
            {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 40, "SQLALCHEMY_DATABASE_URI": "sqlite://", "PROXY_FIX_HOPS": hops, "HSTS": True, "JSON_LOGS": False}
        )

    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    behind_proxy = app_with(1).test_client().get("/api/v1/openapi.json", headers=forwarded)
    assert behind_proxy.headers["Strict-Transport-Security"].startswith("max-age=")
    direct = app_with(0).test_client().get("/api/v1/openapi.json", headers=forwarded)
    assert "Strict-Transport-Security" not in direct.headers
