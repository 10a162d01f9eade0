"""Issue 17 at the office's counter, on a 360x740 phone: a kit's label lends all 30 iPads at once, the
check-in names the two that did not come back, and a booked camera scanned in its slot is lent to the
teacher who booked it with one tap. Labels are "scanned" with the type-the-tag fallback."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from app.clock import local_today, utcnow
from app.models import Role
from tests.booking_loan_factories import make_booking, make_kit
from tests.browser.conftest import sign_in_page
from tests.equipment_factories import make_asset
from tests.factories import PASSWORD, make_user


def _scan(page, tag: str) -> None:
    page.goto("/equipment/scan")
    page.get_by_label("Or type the tag").fill(tag)
    page.get_by_role("button", name="Open").click()
    expect(page).to_have_url(re.compile(rf"/t/{tag}$"))


def _fits_the_phone(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{page.url} scrolls sideways at 360px ({width}px wide)"


def test_office_lends_a_kit_takes_it_back_two_short_and_hands_over_a_booked_camera(live_server, new_phone):
    with live_server.app_context():
        office = make_user(Role.OFFICE, name="Ms O Brennan")
        teacher = make_user(name="Mr B Clarke")
        make_user(name="Ms C Davies")
        make_kit(office, 30)
        camera = make_asset(office, tag="CAM-001", name="Class camera")
        now = utcnow()
        make_booking(teacher, now + timedelta(minutes=5), now + timedelta(minutes=65), asset=camera, periods="P3")
        office_email = office.email
        due = local_today() + timedelta(days=1)

    page = new_phone().new_page()
    sign_in_page(page, office_email, PASSWORD)

    # The trolley's label: every iPad is lent in one go.
    _scan(page, "KIT-IPAD")
    expect(page.get_by_role("heading", name="Scanned: what next?")).to_be_visible()
    _fits_the_phone(page)
    page.get_by_role("link", name="Check out all 30").click()
    page.get_by_label("Who is borrowing it?").select_option(label="Mr B Clarke")
    page.get_by_label("Due back on").fill(due.isoformat())
    page.get_by_label("The borrower has read and accepted the terms").check()
    page.get_by_role("button", name="Lend all 30").click()
    expect(page.locator(".flashes")).to_contain_text(f"All 30 items of iPad trolley are lent to Mr B Clarke until {due:%d/%m/%Y}")
    expect(page.get_by_text("30 of 30 on loan")).to_be_visible()

    # It comes back two short: the check-in says which.
    _scan(page, "KIT-IPAD")
    page.get_by_role("link", name="Check in the kit").click()
    _fits_the_phone(page)
    page.get_by_role("checkbox", name="IPAD-07 iPad 7").uncheck()
    page.get_by_role("checkbox", name="IPAD-19 iPad 19").uncheck()
    page.get_by_role("button", name="Check in iPad trolley").click()
    expect(page.locator(".flashes")).to_contain_text("2 of 30 not returned: IPAD-07, IPAD-19")
    expect(page.get_by_text("2 of 30 on loan")).to_be_visible()

    # The camera booked for the next lesson: one tap lends it to the teacher who booked it.
    _scan(page, "CAM-001")
    expect(page.get_by_role("heading", name="Booked by Mr B Clarke")).to_be_visible()
    _fits_the_phone(page)
    page.get_by_role("button", name="Lend to Mr B Clarke").click()
    expect(page.locator(".flashes")).to_contain_text("CAM-001 Class camera lent to Mr B Clarke until the end of their booking")
    expect(page.get_by_text("On loan to Mr B Clarke")).to_be_visible()
