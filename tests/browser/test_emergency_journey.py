"""The emergency override in real browsers at 360x740: a teacher declares an emergency at the door, the head
reviews it from the approvals inbox, and the teacher's page shows the review."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from app.extensions import db
from app.models import Role
from app.services import permissions
from tests.browser.conftest import sign_in_page
from tests.browser.test_accessibility import _violations
from tests.factories import PASSWORD, make_device, make_user
from tests.permission_factories import committed, make_area

REASON = "Pupil having an asthma attack; calling the office and the parents."


def _no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{page.url} scrolls sideways at 360px ({width}px wide)"


def test_a_teacher_declares_an_emergency_at_the_door_and_the_head_reviews_it(live_server, new_phone):
    with live_server.app_context():
        admin = make_user(Role.ADMIN)
        head = make_user(Role.APPROVER, name="Mrs A Adeyemi")
        dsl = make_user(Role.APPROVER, name="Ms S Lead")
        committed(permissions.set_delegates, admin, [dsl.id])
        teacher = make_user(name="Mr B Clarke")
        make_device(teacher, make="Apple", model="iPhone 13")
        token = make_area(admin, "Year 3 classroom").poster_token
        head_email, teacher_email = head.email, teacher.email
        db.session.rollback()

    staff_phone = new_phone().new_page()
    staff_phone.goto(f"/a/{token}")
    sign_in_page(staff_phone, teacher_email, PASSWORD)
    emergency_box = staff_phone.get_by_label("It is an emergency: I cannot wait for a decision")
    expect(emergency_box).not_to_be_checked()  # visible, never the default
    expect(staff_phone.get_by_role("group", name="Emergency")).to_contain_text("Area rules still apply")
    staff_phone.get_by_label("Medical need").check()
    staff_phone.get_by_label("For 1 hour").check()
    emergency_box.check()
    staff_phone.get_by_role("button", name="Ask permission").click()

    # No reason: the form says exactly what is wrong and keeps what was chosen.
    summary = staff_phone.locator(".error-summary")
    expect(summary).to_contain_text("What is happening?: Say what is happening in a sentence")
    expect(staff_phone.get_by_label("It is an emergency: I cannot wait for a decision")).to_be_checked()
    expect(staff_phone.get_by_label("Medical need")).to_be_checked()
    assert _violations(staff_phone) == []
    _no_sideways_scroll(staff_phone)
    expect(summary.get_by_role("link")).to_have_attribute("href", "#emergency_reason")
    staff_phone.get_by_label("What is happening?").fill(REASON)
    staff_phone.get_by_role("button", name="Ask permission").click()

    expect(staff_phone.locator("#status-text")).to_have_text(
        re.compile(r"^Emergency override: approved until \d\d:\d\d, to be reviewed\.$")
    )
    expect(staff_phone.locator(".flashes")).to_contain_text("The head and the designated safeguarding lead have been told")
    expect(staff_phone.get_by_role("button", name="I've left the room")).to_be_visible()
    status_url = staff_phone.url

    # The head reviews it from the inbox.
    head_phone = new_phone().new_page()
    head_phone.goto("/approvals")
    sign_in_page(head_phone, head_email, PASSWORD)
    reviews = head_phone.get_by_role("region", name="Emergency overrides to review")
    card = reviews.get_by_role("listitem").filter(has_text="Mr B Clarke: Apple iPhone 13 in Year 3 classroom")
    expect(card).to_contain_text(REASON)
    assert _violations(head_phone) == []
    _no_sideways_scroll(head_phone)
    card.get_by_role("group", name="Was the emergency override justified?").get_by_label("Justified", exact=True).check()
    card.get_by_label("Note").fill("The right call; thank you.")
    card.get_by_role("button", name="Record review").click()
    expect(head_phone.locator(".flashes")).to_contain_text("Review recorded: Mr B Clarke's emergency override, justified.")
    expect(head_phone.get_by_role("region", name="Emergency overrides to review")).to_have_count(0)

    # The teacher's page shows who reviewed it and what they found.
    staff_phone.goto(status_url)
    expect(staff_phone.locator("#status-text")).to_contain_text("reviewed by Mrs A Adeyemi: justified")
    expect(staff_phone.locator("#review-state")).to_have_text(
        "Reviewed by Mrs A Adeyemi: justified. Note: The right call; thank you."
    )
    staff_phone.get_by_role("button", name="I've left the room").click()
    expect(staff_phone.locator("#status-text")).to_contain_text("you left the room")
