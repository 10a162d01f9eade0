"""Browser fixtures: the real app on a live local server, and Debian's headless Chromium via Playwright.

Chromium is required: missing, it fails the run (`make test` installs it as root, or names the package).
Only LANYARD_SKIP_BROWSER=1 skips these tests, and the terminal summary says so.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from app import create_app
from app.extensions import db
from tests.conftest import _test_config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 740}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser" in str(item.path):
            item.add_marker(pytest.mark.browser)


class LiveServer:
    """The app served by a real WSGI server on 127.0.0.1 in a thread, on its own SQLite file."""

    def __init__(self, database_path: Path, instance: Path) -> None:
        self.app = create_app(_test_config(f"sqlite:///{database_path}", instance))
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.app.config["BASE_URL"] = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=5)

    def app_context(self):
        return self.app.app_context()


@pytest.fixture
def live_server(template_database, tmp_path):
    if template_database["backend"] != "sqlite":
        pytest.fail("browser tests run against the SQLite file database", pytrace=False)
    database = tmp_path / f"live-{uuid.uuid4().hex[:8]}.db"
    shutil.copyfile(template_database["path"], database)
    instance = tmp_path / "live-instance"
    instance.mkdir()
    server = LiveServer(database, instance).start()
    yield server
    server.stop()
    with server.app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def chromium():
    if os.environ.get("LANYARD_SKIP_BROWSER") == "1":
        pytest.skip("BROWSER JOURNEYS NOT RUN: LANYARD_SKIP_BROWSER=1")
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium; "
            "or LANYARD_SKIP_BROWSER=1 to skip the browser journeys)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def new_phone(chromium, live_server):
    """Make a phone-sized browser context (each is a separate person's phone)."""
    contexts = []

    def make(**options):
        settings = {
            "viewport": PHONE,
            "device_scale_factor": 2,
            "is_mobile": True,
            "has_touch": True,
            "base_url": live_server.url,
            "locale": "en-GB",
            "timezone_id": "Europe/London",
        }
        context = chromium.new_context(**{**settings, **options})
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def phone(new_phone):
    """One phone-sized page."""
    return new_phone().new_page()


def sign_in_page(page, email: str, password: str) -> None:
    """Sign in through the real form, as a person would."""
    if "/sign-in" not in page.url:
        page.goto("/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_load_state()
    assert_signed_in(page)


def assert_signed_in(page) -> None:
    """The page after signing in is a signed-in page: off /sign-in, with the Notices link and Sign out button."""
    expect(page).not_to_have_url(re.compile(r"/sign-in"))
    expect(page.get_by_role("link", name=re.compile(r"^Notices"))).to_be_visible()
    expect(page.get_by_role("button", name=re.compile(r"^Sign out "))).to_be_attached()
