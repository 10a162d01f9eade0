"""Issue 16, phone first: each role's main tasks in a tab bar that fits 320 px, Home pages that say what to
do now (the head decides from Home; staff scan a door poster with the in-app camera), and a door form that
fits one 390x844 screen."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from app.extensions import db
from app.models import PermissionRequest, Role
from app.services import permissions
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, sign_in_page
from tests.browser.test_equipment_camera import _label_video
from tests.factories import PASSWORD, make_device, make_user
from tests.permission_factories import ask, committed, make_area

TALL_PHONE = {"width": 390, "height": 844}

# The tabs each role must see on a phone, and one item each that lives under "More".
MAIN_TASKS = {
    "staff": ((), ["Home", "Scan a poster", "My devices", "My requests"], "My loans"),
    "head": ((Role.APPROVER, Role.STAFF), ["Home", "Approvals", "Scan a poster", "My devices"], "My requests"),
    "office": ((Role.OFFICE,), ["Home", "Equipment", "Scan a label", "Loans"], "Register"),
    "admin": ((Role.ADMIN,), ["Home", "Staff", "Areas", "Settings"], "Sign-in"),
}


def _fits(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"


def _in_viewport(page: Page, locator) -> None:
    box = locator.bounding_box()
    size = page.viewport_size
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= size["width"] + 0.5, box
    assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"] + 0.5, box


@pytest.mark.parametrize("who", sorted(MAIN_TASKS))
def test_each_roles_main_tasks_are_tabs_that_fit_320_and_390_px(live_server, new_phone, who):
    roles, tabs, under_more = MAIN_TASKS[who]
    with live_server.app_context():
        email = make_user(*roles).email
    for width in (320, 390):
        page = new_phone(viewport={"width": width, "height": 740}).new_page()
        sign_in_page(page, email, PASSWORD)
        nav = page.get_by_role("navigation", name="Main")
        for label in [*tabs, "More"]:
            link = nav.get_by_role("link", name=label, exact=True)
            expect(link).to_be_visible()
            _in_viewport(page, link)
        assert nav.get_by_role("link").count() == len(tabs) + 1  # at most five in the bar
        expect(nav.get_by_role("link", name=under_more, exact=True)).to_be_hidden()
        _fits(page)
        # Everything else is on the More page, reached from the bar (by keyboard as well: it is a link).
        nav.get_by_role("link", name="More", exact=True).focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="More")).to_be_visible()
        everything = page.get_by_role("list", name="Everything")
        expect(everything.get_by_role("link", name=under_more, exact=True)).to_be_visible()
        _fits(page)
        page.context.close()


def test_a_desktop_keeps_every_item_in_the_top_bar(live_server, new_phone):
    with live_server.app_context():
        email = make_user(Role.OFFICE, Role.STAFF).email
    page = new_phone(viewport={"width": 1366, "height": 768}, is_mobile=False, has_touch=False).new_page()
    sign_in_page(page, email, PASSWORD)
    nav = page.get_by_role("navigation", name="Main")
    for label in (
        "Home",
        "Scan a poster",
        "My devices",
        "My requests",
        "My loans",
        "Equipment",
        "Scan a label",
        "Loans",
        "Register",
    ):
        link = nav.get_by_role("link", name=label, exact=True)
        expect(link).to_be_visible()
        _in_viewport(page, link)
    expect(nav.get_by_role("link", name="More")).to_be_hidden()
    assert nav.bounding_box()["y"] < 200  # at the top
    _fits(page)
    # The equipment pages' own strip wraps instead of clipping "Stock-takes".
    page.goto("/equipment")
    strip = page.get_by_role("navigation", name="Equipment")
    for label in ("Assets", "Scan", "Loans", "Overdue", "Stock-takes", "Labels", "Import"):
        _in_viewport(page, strip.get_by_role("link", name=label, exact=True))


def test_the_office_equipment_strip_wraps_at_320_px(live_server, new_phone):
    with live_server.app_context():
        email = make_user(Role.OFFICE).email
    page = new_phone(viewport={"width": 320, "height": 740}).new_page()
    sign_in_page(page, email, PASSWORD)
    page.goto("/equipment")
    strip = page.get_by_role("navigation", name="Equipment")
    for label in ("Assets", "Scan", "Loans", "Overdue", "Stock-takes", "Labels", "Import"):
        link = strip.get_by_role("link", name=label, exact=True)
        box = link.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 320, (label, box)
    _fits(page)


def test_the_door_form_fits_one_screen_with_the_usual_device_chosen(live_server, new_phone, frozen_clock):
    with live_server.app_context():
        admin = make_user(Role.ADMIN)
        teacher = make_user(name="Mr B Clarke")
        area = make_area(admin, "Year 3 classroom")
        make_device(teacher, make="Apple", model="iPhone 13")
        watch = make_device(teacher, make="Apple", model="Watch Series 9", kind="smartwatch")
        committed(permissions.withdraw, teacher, ask(teacher, area, watch).id)
        token, email = area.poster_token, teacher.email
    page = new_phone(viewport=TALL_PHONE).new_page()
    page.goto(f"/a/{token}")
    sign_in_page(page, email, PASSWORD)
    expect(page.get_by_role("heading", name="Take a device into Year 3 classroom?")).to_be_visible()
    # The device used last time is chosen; the end of the lesson is the default.
    expect(page.get_by_role("radio", name=re.compile("Apple Watch Series 9"))).to_be_checked()
    expect(page.get_by_role("radio", name="Apple iPhone 13")).not_to_be_checked()
    expect(page.get_by_role("radio", name="Until the end of this lesson")).to_be_checked()
    # "Other", "Until" and the emergency's details show only once chosen.
    expect(page.get_by_label("If other, say why")).to_be_hidden()
    expect(page.get_by_label("Until (if you choose a time)")).to_be_hidden()
    expect(page.get_by_label("What is happening?")).to_be_hidden()
    page.get_by_role("radio", name="Other").check()
    expect(page.get_by_label("If other, say why")).to_be_visible()
    page.get_by_role("radio", name="Until a time I choose").check()
    expect(page.get_by_label("Until (if you choose a time)")).to_be_visible()
    page.get_by_label("It is an emergency: I cannot wait for a decision").check()
    expect(page.get_by_label("What is happening?")).to_be_visible()
    page.reload()
    page.evaluate("window.scrollTo(0, 0)")

    # "Ask permission" is on the first screen, above the tab bar, without scrolling.
    button = page.get_by_role("button", name="Ask permission")
    box = button.bounding_box()
    assert box["y"] + box["height"] <= 844, box
    centre_is_button = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y)?.closest('button')?.textContent.trim() === 'Ask permission'",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert centre_is_button, "the tab bar covers the button"
    assert page.evaluate("window.scrollY") == 0
    _fits(page)

    # Two taps from the poster: a reason, then Ask permission.
    page.get_by_role("radio", name="Expecting an urgent call").check()
    button.click()
    expect(page.locator("#status-text")).to_have_text(re.compile("Waiting for a decision"))
    with live_server.app_context():
        latest = db.session.scalars(db.select(PermissionRequest).order_by(PermissionRequest.id.desc())).first()
        assert latest.device_label == "Apple Watch Series 9" and latest.reason == "urgent_call"


def test_the_head_decides_from_home(live_server, new_phone, frozen_clock):
    with live_server.app_context():
        admin = make_user(Role.ADMIN)
        head = make_user(Role.APPROVER, name="Mrs A Adeyemi")
        teacher = make_user(name="Mr B Clarke")
        area = make_area(admin, "Year 3 classroom")
        ask(teacher, area, make_device(teacher, make="Apple", model="iPhone 13"))
        email = head.email
    page = new_phone(viewport=TALL_PHONE).new_page()
    sign_in_page(page, email, PASSWORD)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name=re.compile(r"^Approvals 1 waiting"))).to_be_visible()
    waiting = page.get_by_role("list", name="Waiting for a decision")
    card = waiting.get_by_role("listitem")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("Mr B Clarke: Apple iPhone 13 into Year 3 classroom")
    approve = card.get_by_role("button", name="Approve")
    _in_viewport(page, approve)  # one tap, no scrolling
    approve.click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator(".flashes")).to_contain_text("Approved: Mr B Clarke, Apple iPhone 13 in Year 3 classroom.")
    expect(page.get_by_text("Nothing is waiting.")).to_be_visible()
    expect(nav.get_by_role("link", name="Approvals", exact=True)).to_be_visible()  # no count now
    # The notice about it no longer counts as new, and says what became of it.
    page.goto("/notices")
    expect(page.locator(".notices-link .badge")).to_have_count(0)
    notice = page.get_by_role("list", name="Notices").get_by_role("listitem").first
    expect(notice).to_contain_text("Now: Approved until")
    expect(notice).to_contain_text("by Mrs A Adeyemi")
    expect(notice).not_to_contain_text("New")


def _camera_page(chromium, live_server, video):
    browser = chromium.browser_type.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    context = browser.new_context(
        viewport=TALL_PHONE, base_url=live_server.url, permissions=["camera"], is_mobile=True, has_touch=True
    )
    context.set_default_timeout(15_000)
    return browser, context.new_page()


def test_staff_scan_a_door_poster_from_home(live_server, chromium, tmp_path):
    with live_server.app_context():
        admin = make_user(Role.ADMIN)
        teacher = make_user(name="Mr B Clarke")
        make_device(teacher, make="Apple", model="iPhone 13")
        token, email = make_area(admin, "Year 3 classroom").poster_token, teacher.email
    video = tmp_path / "poster.y4m"
    _label_video(f"{live_server.url}/a/{token}", video)
    browser, page = _camera_page(chromium, live_server, video)
    sign_in_page(page, email, PASSWORD)
    page.get_by_role("link", name="Scan a door poster").click()
    expect(page.get_by_role("heading", name="Scan a door poster")).to_be_visible()
    page.get_by_role("button", name="Use the camera").click()
    expect(page).to_have_url(re.compile(rf"/a/{token}$"))
    expect(page.get_by_role("heading", name="Take a device into Year 3 classroom?")).to_be_visible()
    expect(page.get_by_role("radio", name="Apple iPhone 13")).to_be_checked()  # the only device
    browser.close()


def test_a_foreign_code_is_refused_never_opened(live_server, chromium, tmp_path):
    with live_server.app_context():
        email = make_user(name="Mr B Clarke").email
    video = tmp_path / "foreign.y4m"
    _label_video("https://example.org/a/looks-like-a-poster", video)
    browser, page = _camera_page(chromium, live_server, video)
    sign_in_page(page, email, PASSWORD)
    page.goto("/scan")
    page.get_by_role("button", name="Use the camera").click()
    expect(page.get_by_role("status").filter(has_text="not one of this school's Lanyard door posters")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/scan$"))
    # Pasted, the same link is refused by the server too.
    page.get_by_label("Or paste the poster's link").fill("https://example.org/a/looks-like-a-poster")
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_role("alert")).to_contain_text("not a link from one of this school's Lanyard door posters")
    assert page.url.startswith(live_server.url)
    browser.close()


@pytest.mark.parametrize("path, name", [("/equipment", "Assets"), ("/equipment/loans", "Loans")])
def test_the_office_sees_a_table_on_a_desktop_and_cards_on_a_phone(live_server, new_phone, path, name):
    from tests.equipment_factories import lend, make_asset

    with live_server.app_context():
        office = make_user(Role.OFFICE)
        borrower = make_user(name="Mr T Borrower")
        asset = make_asset(office, name="Class camera", home_location="Year 4")
        lend(office, asset, borrower, purpose="Sports day photos")
        email = office.email
    desk = new_phone(viewport={"width": 1366, "height": 768}, is_mobile=False, has_touch=False, device_scale_factor=1).new_page()
    sign_in_page(desk, email, PASSWORD)
    desk.goto(path)
    table = desk.get_by_role("table", name=name)
    expect(table.get_by_role("columnheader").first).to_be_visible()
    expect(table.get_by_role("row").filter(has_text="Class camera")).to_have_count(1)
    expect(desk.get_by_role("list", name=name)).to_have_count(0)  # the phone's cards are hidden, from screen readers too
    phone = new_phone(viewport=TALL_PHONE).new_page()
    sign_in_page(phone, email, PASSWORD)
    phone.goto(path)
    expect(phone.get_by_role("list", name=name).get_by_role("listitem").filter(has_text="Class camera")).to_have_count(1)
    expect(phone.get_by_role("table", name=name)).to_have_count(0)
    _fits(phone)


def test_the_device_register_is_a_table_on_a_desktop_and_cards_with_a_reveal_on_a_phone(live_server, new_phone):
    from tests.factories import make_device

    with live_server.app_context():
        office = make_user(Role.OFFICE)
        device = make_device(make_user(name="Mrs Q Longsurname-Hyphenated"), model="Galaxy Z Fold 6")
        email, imei = office.email, device.imei1
    desk = new_phone(viewport={"width": 1366, "height": 768}, is_mobile=False, has_touch=False, device_scale_factor=1).new_page()
    sign_in_page(desk, email, PASSWORD)
    desk.goto("/office/devices")
    table = desk.get_by_role("table", name="Registered devices")
    expect(table.get_by_role("columnheader", name="Status")).to_be_visible()
    expect(desk.get_by_role("list", name="Registered devices")).to_have_count(0)
    phone = new_phone(viewport=TALL_PHONE).new_page()
    sign_in_page(phone, email, PASSWORD)
    phone.goto("/office/devices")
    expect(phone.get_by_role("table", name="Registered devices")).to_have_count(0)
    card = phone.get_by_role("list", name="Registered devices").get_by_role("listitem").filter(has_text="Galaxy Z Fold 6")
    expect(card).to_contain_text("Mrs Q Longsurname-Hyphenated")
    expect(card).to_contain_text(imei[-4:])
    assert imei not in phone.content()
    _fits(phone)
    card.get_by_role("button", name="Show the IMEI of Mrs Q Longsurname-Hyphenated's").click()
    expect(phone.get_by_text(imei).first).to_be_visible()


LABELS_ABOVE_CONTROLS = """() => [...document.querySelectorAll('form[role=search] label[for]')].flatMap((label) => {
  const control = document.getElementById(label.htmlFor);
  if (!control) return [label.htmlFor + ': no control'];
  const l = label.getBoundingClientRect(), c = control.getBoundingClientRect();
  const above = l.bottom <= c.top + 1;
  const overlaps = l.left < c.right && c.left < l.right;
  return above && overlaps ? [] : [label.textContent.trim() + ' is not above its box'];
})"""


@pytest.mark.parametrize("width", [390, 1366])
def test_search_forms_put_each_label_above_its_own_box(live_server, new_phone, width):
    with live_server.app_context():
        email = make_user(Role.OFFICE, Role.ADMIN).email
    page = new_phone(viewport={"width": width, "height": 800}).new_page()
    sign_in_page(page, email, PASSWORD)
    for path in ("/office/devices", "/equipment", "/equipment/labels", "/admin/staff"):
        page.goto(path)
        expect(page.get_by_role("search")).to_have_count(1)
        assert page.evaluate(LABELS_ABOVE_CONTROLS) == [], path
