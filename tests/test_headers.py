"""Response headers (DESIGN.md section 10) on every kind of page."""

from __future__ import annotations

import pytest

from tests.factories import make_user, sign_in

PERSONAL_PAGES = ["/", "/devices", "/devices/new", "/notices", "/my-data", "/my-data/download", "/account", "/api/v1/me", "/api/v1/devices"]


def _check_common(response):
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "camera=(self)" in response.headers["Permissions-Policy"]


@pytest.mark.parametrize("path", PERSONAL_PAGES)
def test_personal_pages_are_never_stored(client, path):
    sign_in(client, make_user())
    response = client.get(path)
    assert response.status_code == 200
    _check_common(response)
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/sign-in", "/offline", "/privacy", "/manifest.webmanifest", "/sw.js", "/api/v1/openapi.json", "/nowhere"])
def test_public_answers_carry_the_same_protections(client, path):
    response = client.get(path)
    assert response.status_code in (200, 404)
    _check_common(response)


def test_hsts_is_sent_behind_https(client):
    assert "Strict-Transport-Security" not in client.get("/sign-in").headers
    secure = client.get("/sign-in", base_url="https://lanyard.test")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_templates_hold_no_inline_script_style_or_handlers():
    import pathlib
    import re

    for template in pathlib.Path("templates").rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template
        assert not re.search(r"\son[a-z]+=", text), template
        assert not re.search(r"\sstyle=", text), template
        assert "<style" not in text, template
