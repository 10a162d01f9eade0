"""J4 in a real browser at 360x740: the office opens a label's link and lends a camera to a teacher, the
teacher sees the loan, and the office runs a stock-take of five labels (one missing) and reads the report.

Labels are "scanned" with the type-the-tag fallback, which goes through the same JSON API as the camera.
"""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from app.clock import local_today
from app.models import Role
from tests.browser.conftest import sign_in_page
from tests.equipment_factories import make_asset
from tests.factories import PASSWORD, make_user

SHELF = ["Y3-CAM-1", "Y3-IPAD-1", "Y3-IPAD-2", "Y3-REC-1", "Y3-LAP-1"]


def _fits_the_phone(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{page.url} scrolls sideways at 360px ({width}px wide)"


def test_office_lends_by_label_teacher_sees_it_and_stocktake_reports_the_missing_one(live_server, new_phone):
    with live_server.app_context():
        office = make_user(Role.OFFICE, name="Ms O Brennan")
        teacher = make_user(name="Mr B Clarke")
        office_email, teacher_email = office.email, teacher.email
        make_asset(office, tag="CAM-100", name="Canon camera", home_location="Office")
        for tag in SHELF:
            make_asset(office, tag=tag, name=f"Year 3 {tag[3:].split('-')[0].lower()}", home_location="Year 3")
        due = local_today() + timedelta(days=2)

    # The office scans the camera's label: its QR opens /t/CAM-100 (sign in first, then straight back).
    office_phone = new_phone().new_page()
    office_phone.goto("/t/CAM-100")
    expect(office_phone).to_have_url(re.compile(r"/sign-in\?next="))
    sign_in_page(office_phone, office_email, PASSWORD)
    expect(office_phone).to_have_url(re.compile(r"/t/CAM-100$"))
    expect(office_phone.get_by_role("heading", name="Scanned: what next?")).to_be_visible()
    _fits_the_phone(office_phone)
    office_phone.get_by_role("link", name="Check out").click()

    office_phone.get_by_label("Who is borrowing it?").select_option(label="Mr B Clarke")
    office_phone.get_by_label("Due back on").fill(due.isoformat())
    office_phone.get_by_label("What is it for? (optional)").fill("Year 3 science photos")
    office_phone.get_by_role("button", name="Lend CAM-100").click()
    expect(office_phone.get_by_role("status")).to_contain_text(f"CAM-100 is lent to Mr B Clarke until {due:%d/%m/%Y}")
    expect(office_phone.get_by_text("On loan to Mr B Clarke")).to_be_visible()
    _fits_the_phone(office_phone)

    # The teacher sees it in "My loans" on their own phone.
    teacher_phone = new_phone().new_page()
    sign_in_page(teacher_phone, teacher_email, PASSWORD)
    teacher_phone.get_by_role("navigation", name="Main").get_by_role("link", name="More").click()  # not a main task
    teacher_phone.get_by_role("link", name="My loans").click()
    loans = teacher_phone.get_by_role("list", name="Equipment you have")
    expect(loans).to_contain_text("CAM-100")
    expect(loans).to_contain_text("Canon camera")
    expect(loans).to_contain_text(f"due back {due:%d/%m/%Y}")
    _fits_the_phone(teacher_phone)

    # The office runs a stock-take of Year 3 and scans four of the five labels (one twice).
    office_phone.goto("/equipment/stocktakes")
    office_phone.get_by_label("Where?").select_option(label="Year 3")
    office_phone.get_by_role("button", name="Start the stock-take").click()
    expect(office_phone.get_by_role("heading", name=re.compile(r"Stock-take #\d+: Year 3"))).to_be_visible()
    scanned = office_phone.get_by_role("list", name="Scanned labels")
    for count, tag in enumerate(SHELF[:4], start=1):
        office_phone.get_by_label("Type the tag").fill(tag.lower())
        office_phone.get_by_role("button", name="Record").click()
        expect(scanned.get_by_role("listitem")).to_have_count(count)
        expect(scanned.get_by_role("listitem").first).to_contain_text(tag)
        expect(office_phone.locator("#found-count")).to_have_text(str(count))
        expect(office_phone.get_by_label("Type the tag")).to_have_value("")
    office_phone.get_by_label("Type the tag").fill(SHELF[0])
    office_phone.get_by_role("button", name="Record").click()
    expect(office_phone.locator("#scan-message")).to_contain_text(f"Already scanned: {SHELF[0]}")
    expect(scanned.get_by_role("listitem")).to_have_count(4)
    _fits_the_phone(office_phone)

    office_phone.get_by_role("link", name="Close the stock-take").click()
    expect(office_phone.get_by_text("4 of 5 expected items have been found")).to_be_visible()
    office_phone.get_by_role("button", name="Close and see the report").click()
    expect(office_phone.get_by_role("heading", name="Missing (1)")).to_be_visible()
    expect(office_phone.get_by_role("heading", name="Present (4)")).to_be_visible()
    expect(office_phone.get_by_role("heading", name="On loan (0)")).to_be_visible()
    expect(office_phone.get_by_role("heading", name="Unexpected (0)")).to_be_visible()
    expect(office_phone.locator("#missing")).to_contain_text(SHELF[4])
    expect(office_phone.get_by_role("link", name="Download CSV")).to_be_visible()
    _fits_the_phone(office_phone)
