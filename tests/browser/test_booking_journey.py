"""Issue 17 in a real browser on a 390x844 phone: a teacher books the class camera for P3 from the More
menu, sees it in "My bookings" and cancels it, finding everything by role and name as a screen reader
would; the booking pages pass axe in light and dark mode and never scroll sideways."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from app.clock import local_today
from app.database import write_intent
from app.extensions import db
from app.models import Role
from app.services import bookings
from tests.booking_factories import bookable_asset, make_kit
from tests.browser.conftest import sign_in_page
from tests.browser.test_accessibility import _violations
from tests.factories import PASSWORD, make_user

PHONE_390 = {"width": 390, "height": 844}


def _next_school_day():
    day = local_today() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _fits(page, width: int = 390) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url} scrolls sideways at {width}px ({scroll}px wide)"


def test_a_teacher_books_the_camera_for_p3_sees_it_and_cancels_it(live_server, new_phone):
    with live_server.app_context():
        office = make_user(Role.OFFICE, name="Ms O Brennan")
        teacher = make_user(name="Mr B Clarke")
        bookable_asset(office, tag="CAM-010", name="Class camera")
        make_kit(office, members=2, name="iPad trolley")
        email = teacher.email
    day = _next_school_day()

    page = new_phone(viewport=PHONE_390).new_page()
    sign_in_page(page, email, PASSWORD)
    # Bookings are not a main task: on a phone they are under "More".
    page.get_by_role("navigation", name="Main").get_by_role("link", name="More").click()
    page.get_by_role("link", name="Bookings").click()
    expect(page.get_by_role("heading", name="My bookings", level=1)).to_be_visible()
    expect(page.get_by_text("You have no bookings coming up.")).to_be_visible()
    page.get_by_role("link", name="Book equipment").first.click()

    expect(page.get_by_role("heading", name="Book equipment", level=1)).to_be_visible()
    _fits(page)
    assert _violations(page) == []
    page.get_by_label("What do you want to book?").select_option(label="Class camera (CAM-010)")
    page.get_by_label("Day").fill(day.isoformat())
    page.get_by_role("group", name="Lesson periods").get_by_role("checkbox", name="P3 11:10-12:10").check()
    page.get_by_label("What is it for? (optional)").fill("Year 3 science photos")
    page.get_by_role("button", name="Book it").click()

    expect(page.get_by_role("status")).to_contain_text(f"Booked: Class camera, {day:%A} {day:%d/%m/%Y}, P3 (11:10-12:10).")
    bookings_list = page.get_by_role("list", name="Your bookings")
    expect(bookings_list.get_by_role("heading", name="Class camera")).to_be_visible()
    expect(bookings_list).to_contain_text("P3 (11:10-12:10)")
    expect(bookings_list).to_contain_text("Year 3 science photos")
    _fits(page)
    assert _violations(page) == []

    # Booking the same slot again is refused, saying who has it and the next free slot; what was typed stays.
    page.goto("/bookings/new")
    page.get_by_label("What do you want to book?").select_option(label="Class camera (CAM-010)")
    page.get_by_label("Day").fill(day.isoformat())
    page.get_by_role("checkbox", name="P3 11:10-12:10").check()
    page.get_by_role("button", name="Book it").click()
    expect(page.get_by_role("alert")).to_contain_text("Mr B Clarke has booked it")
    expect(page.get_by_role("alert")).to_contain_text("The next free slot is")
    expect(page.get_by_role("checkbox", name="P3 11:10-12:10")).to_be_checked()
    _fits(page)

    page.goto("/bookings")
    page.get_by_role("link", name=re.compile(r"^Cancel the booking of Class camera on ")).click()
    expect(page.get_by_role("heading", name="Cancel the booking of Class camera?", level=1)).to_be_visible()
    assert _violations(page) == []
    page.get_by_role("button", name="Cancel the booking").click()
    expect(page.get_by_role("status")).to_contain_text("Booking of Class camera cancelled.")
    expect(page.get_by_text("You have no bookings coming up.")).to_be_visible()

    with live_server.app_context(), write_intent():
        (booking,) = bookings.my_bookings(db.session, db.session.get(type(teacher), teacher.id), upcoming_only=False)
        assert booking.status == "cancelled" and booking.purpose == "Year 3 science photos"


def test_the_office_booking_pages_pass_axe_in_dark_mode_on_a_phone(live_server, new_phone):
    with live_server.app_context():
        office = make_user(Role.OFFICE, name="Ms O Brennan")
        kit = make_kit(office, members=3, name="iPad trolley")
        email, kit_id = office.email, kit.id
    page = new_phone(viewport=PHONE_390, color_scheme="dark").new_page()
    sign_in_page(page, email, PASSWORD)
    problems = []
    for path in ("/bookings/new", "/bookings/day", "/bookings/kits", f"/bookings/kits/{kit_id}"):
        page.goto(path)
        _fits(page)
        problems += [f"{path}: {v}" for v in _violations(page)]
    assert problems == []
