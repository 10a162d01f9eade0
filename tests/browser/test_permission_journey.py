"""J2 and J3 in real browsers side by side at 360x740: a teacher asks at the door, the head decides on her phone."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from app.clock import format_time
from app.extensions import db
from app.models import PermissionRequest, Role
from tests.browser.conftest import sign_in_page
from tests.factories import PASSWORD, make_device, make_user
from tests.permission_factories import make_area

SLOW_POLL = 20_000  # the status page polls with backoff (at most 5 s apart while waiting)


def _no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{page.url} scrolls sideways at 360px ({width}px wide)"


def _ask(page, token: str) -> None:
    page.goto(f"/a/{token}")
    expect(page.get_by_role("heading", name="Take a device into Year 3 classroom?")).to_be_visible()
    expect(page.get_by_label("Apple iPhone 13")).to_be_checked()  # the only device is chosen already
    page.get_by_label("Expecting an urgent call").check()
    page.get_by_label("For 1 hour").check()
    _no_sideways_scroll(page)
    page.get_by_role("button", name="Ask permission").click()
    expect(page.locator("#status-text")).to_have_text(re.compile("Waiting for a decision"))
    page.evaluate("window.__samePage = true")  # survives only if the page never reloads


def _latest_request(live_server) -> PermissionRequest:
    with live_server.app_context():
        return db.session.scalars(db.select(PermissionRequest).order_by(PermissionRequest.id.desc())).first()


def test_ask_at_the_door_and_the_head_approves_then_denies_with_a_note(live_server, new_phone):
    with live_server.app_context():
        admin = make_user(Role.ADMIN)
        head = make_user(Role.APPROVER, name="Mrs A Adeyemi")
        teacher = make_user(name="Mr B Clarke")
        make_device(teacher, make="Apple", model="iPhone 13")
        token = make_area(admin, "Year 3 classroom").poster_token
        head_email, teacher_email = head.email, teacher.email

    staff_phone = new_phone().new_page()
    head_phone = new_phone().new_page()

    # J2: the camera opens the poster's URL; not signed in yet, so sign in and come back.
    staff_phone.goto(f"/a/{token}")
    expect(staff_phone).to_have_url(re.compile(r"/sign-in\?next=/a/"))
    sign_in_page(staff_phone, teacher_email, PASSWORD)
    _ask(staff_phone, token)
    expect(staff_phone.get_by_role("button", name="Withdraw")).to_be_visible()
    expect(staff_phone.get_by_role("button", name="I've left the room")).to_be_hidden()

    # J3: the head sees it in the inbox and approves in one tap.
    head_phone.goto("/approvals")
    sign_in_page(head_phone, head_email, PASSWORD)
    card = head_phone.get_by_role("listitem").filter(has_text="Mr B Clarke: Apple iPhone 13 into Year 3 classroom")
    expect(card).to_be_visible()
    _no_sideways_scroll(head_phone)
    card.get_by_role("button", name="Approve").click()
    expect(head_phone.locator(".flashes")).to_contain_text("Approved: Mr B Clarke")
    expect(head_phone.get_by_text("Nothing is waiting.")).to_be_visible()

    approved = _latest_request(live_server)
    expected = f"Approved until {format_time(approved.approved_until)} by Mrs A Adeyemi"
    expect(staff_phone.locator("#status-text")).to_have_text(expected, timeout=SLOW_POLL)
    assert staff_phone.evaluate("window.__samePage === true"), "the status page reloaded"
    expect(staff_phone.get_by_role("button", name="I've left the room")).to_be_visible()
    expect(staff_phone.get_by_role("button", name="Withdraw")).to_be_hidden()
    _no_sideways_scroll(staff_phone)

    # The Now board shows who has which device where, until when.
    now_phone = new_phone().new_page()
    now_phone.goto("/now")
    sign_in_page(now_phone, head_email, PASSWORD)
    head_now = now_phone
    row = head_now.get_by_role("row").filter(has_text="Mr B Clarke")
    expect(row).to_contain_text("Year 3 classroom")
    expect(row).to_contain_text(format_time(approved.approved_until))
    _no_sideways_scroll(head_now)

    # Leaving the room ends it.
    staff_phone.get_by_role("button", name="I've left the room").click()
    expect(staff_phone.locator("#status-text")).to_contain_text("you left the room")

    # The same again, denied with a note. The head's open inbox notices the new request by itself.
    _ask(staff_phone, token)
    expect(head_phone.locator("#inbox-news")).to_contain_text("1 waiting now", timeout=SLOW_POLL)
    head_phone.get_by_role("link", name="Show the latest").click()
    card = head_phone.get_by_role("listitem").filter(has_text="Mr B Clarke: Apple iPhone 13 into Year 3 classroom")
    card.get_by_text("Add a note or a shorter end time").click()
    card.get_by_label("Note (optional)").fill("Not during the phonics assessment, sorry")
    card.get_by_role("button", name="Deny").click()
    expect(head_phone.locator(".flashes")).to_contain_text("Denied: Mr B Clarke")
    expect(head_phone.get_by_text("Nothing is waiting.")).to_be_visible()

    expect(staff_phone.locator("#status-text")).to_have_text("Denied by Mrs A Adeyemi", timeout=SLOW_POLL)
    expect(staff_phone.locator("#status-note")).to_have_text("Note: Not during the phonics assessment, sorry")
    assert staff_phone.evaluate("window.__samePage === true"), "the status page reloaded"
    expect(staff_phone.get_by_role("button", name="Withdraw")).to_be_hidden()
    expect(staff_phone.get_by_role("button", name="I've left the room")).to_be_hidden()
