"""One tap, one action, in a real browser on slow Wi-Fi: a double tap on "Ask permission" or "Register
device" sends one request, the button shows it is busy; and with the page's script bypassed, the server
still acts once for one form."""

from __future__ import annotations

import os
import re
import time

import sqlalchemy as sa
from flask import request
from playwright.sync_api import expect

from app.extensions import db
from app.models import PermissionRequest, PersonalDevice, Role
from tests.browser.conftest import sign_in_page
from tests.factories import PASSWORD, make_device, make_imei, make_user
from tests.permission_factories import make_area


def _school(live_server):
    with live_server.app_context():
        admin = make_user(Role.ADMIN)
        staff = make_user(name="Mr B Clarke")
        make_device(staff, model="iPhone 13")
        area = make_area(admin, "Year 3 classroom")
        return staff.email, staff.id, area.poster_token


def _count(live_server, model, *where) -> int:
    with live_server.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def _slow_posts(live_server, path_pattern: str) -> list[str]:
    """Slow Wi-Fi: every post to a matching path takes 1.5 s to answer; returns the paths posted to."""
    posted: list[str] = []

    def slow():
        if request.method == "POST" and re.search(path_pattern, request.path):
            posted.append(request.path)
            time.sleep(1.5)

    live_server.app.before_request_funcs.setdefault(None, []).insert(0, slow)
    return posted


def _watch_busy(page, form_selector: str) -> list[dict]:
    """What the form looks like just after each submit event (reported by the page while it waits)."""
    seen: list[dict] = []
    page.expose_function("lanyardTestSawSubmit", lambda state: seen.append(state))  # noqa: PLW0108 (playwright marks the function it is given: a builtin method takes no attributes)
    page.evaluate(
        """(selector) => {
            const form = document.querySelector(selector);
            form.addEventListener("submit", () => setTimeout(() => window.lanyardTestSawSubmit({
                disabled: form.querySelector("button[type=submit]").disabled,
                busy: form.getAttribute("aria-busy"),
            }), 50));
        }""",
        form_selector,
    )
    return seen


def test_a_double_tap_on_ask_permission_sends_one_request(live_server, phone):
    email, _staff_id, token = _school(live_server)
    sign_in_page(phone, email, PASSWORD)
    phone.goto(f"/a/{token}")
    phone.get_by_label("Expecting an urgent call").check()
    phone.get_by_label("For 1 hour").check()
    posted = _slow_posts(live_server, rf"^/a/{token}$")
    seen = _watch_busy(phone, "form.ask-form")

    phone.get_by_role("button", name="Ask permission").dblclick()
    expect(phone.get_by_text("Waiting for a decision").first).to_be_visible()
    assert _count(live_server, PermissionRequest) == 1
    assert len(posted) == 1
    assert seen and seen[0] == {"disabled": True, "busy": "true"}


def test_a_double_tap_on_register_device_registers_one_device_and_no_clash(live_server, phone):
    email, staff_id, _token = _school(live_server)
    sign_in_page(phone, email, PASSWORD)
    phone.goto("/devices/new")
    phone.get_by_label("Make").fill("Google")
    phone.get_by_label("Model").fill("Pixel 8")
    phone.get_by_label("IMEI", exact=True).fill(make_imei(515151))
    posted = _slow_posts(live_server, r"^/devices/new$")
    seen = _watch_busy(phone, "main form[method=post]")

    phone.get_by_role("button", name="Register device").dblclick()
    expect(phone.get_by_role("heading", name="My devices")).to_be_visible()
    expect(phone.get_by_role("status")).to_contain_text("Pixel 8 is registered")
    expect(phone.get_by_text("already registered in Lanyard")).to_have_count(0)
    assert _count(live_server, PersonalDevice, PersonalDevice.owner_id == staff_id) == 2
    assert len(posted) == 1
    assert seen and seen[0] == {"disabled": True, "busy": "true"}


def test_with_the_script_bypassed_the_server_still_acts_once(live_server, phone):
    """Two posts of the same form at once (as a browser without our script, or a resend, would make)."""
    email, _staff_id, token = _school(live_server)
    sign_in_page(phone, email, PASSWORD)
    phone.goto(f"/a/{token}")
    phone.get_by_label("Expecting an urgent call").check()
    phone.get_by_label("For 1 hour").check()
    landed = phone.evaluate(
        """async () => {
            const form = document.querySelector("form.ask-form");
            const body = new URLSearchParams(new FormData(form));
            const send = () => fetch(form.action || location.href, {method: "POST", body: body, credentials: "same-origin"});
            const answers = await Promise.all([send(), send()]);
            return answers.map((answer) => new URL(answer.url).pathname);
        }"""
    )
    assert len(set(landed)) == 1 and re.fullmatch(r"/requests/\d+", landed[0]), landed
    assert _count(live_server, PermissionRequest) == 1

    # A second request for the same phone and room is refused, with a link to the first.
    phone.goto(f"/a/{token}")
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.get_by_label("Expecting an urgent call").check()
    phone.get_by_label("For 1 hour").check()
    phone.get_by_role("button", name="Ask permission").click()
    expect(phone.get_by_role("alert").first).to_contain_text("already asked")
    if os.environ.get("LANYARD_SCREENSHOTS"):  # to look at: the door page saying so, at 390x844
        phone.screenshot(path=os.path.join(os.environ["LANYARD_SCREENSHOTS"], "door-already-asked-390x844.png"))
    phone.get_by_role("link", name="See the request you already made").click()
    expect(phone).to_have_url(re.compile(landed[0] + "$"))
    assert _count(live_server, PermissionRequest) == 1
