"""J2 and J3 by keyboard alone, checked as a screen-reader user would meet them (issue 7).

No mouse and no element actions: only Tab, Shift+Tab, Enter, Space, the arrow keys and typed text.
After every key the test asks which element has focus (by role and name), whether its focus ring can
be seen (an outline or shadow with at least 3:1 contrast against what is behind it, WCAG 1.4.11) and
whether it is on screen; each page is also walked round in full both ways, which proves it holds no
keyboard trap.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Locator, Page, expect

from app.database import write_intent
from app.extensions import db
from app.models import PermissionRequest, Role, User
from app.services import permissions
from tests.browser.conftest import assert_signed_in
from tests.factories import PASSWORD, make_device, make_user
from tests.permission_factories import ask, make_area

SLOW_POLL = 20_000  # the status page polls with backoff (at most 5 s apart while waiting)
NINE_AM = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # 09:00 in London (GMT): a school morning, whatever the real time

# What has focus now, how its ring looks against what lies behind it, and whether it is on screen.
FOCUS = r"""() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  const rgb = text => {
    const m = (text || "").match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const luminance = c => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const contrast = (a, b) => {
    const x = luminance(a), y = luminance(b);
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  };
  let behind = null;
  for (let node = el.parentElement; node && !behind; node = node.parentElement) {
    const colour = rgb(getComputedStyle(node).backgroundColor);
    if (colour && colour.a > 0) behind = colour;
  }
  behind = behind || {r: 255, g: 255, b: 255, a: 1};
  const style = getComputedStyle(el);
  const rings = [];
  if (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2) rings.push(rgb(style.outlineColor));
  if (style.boxShadow && style.boxShadow !== "none") rings.push(rgb(style.boxShadow));
  const box = el.getBoundingClientRect();
  const name = el.getAttribute("aria-label") || (el.labels && el.labels[0] && el.labels[0].innerText) || el.innerText || el.value || el.id;
  return {
    tag: el.tagName.toLowerCase(),
    label: `${el.tagName.toLowerCase()}${el.type ? "[" + el.type + "]" : ""} "${(name || "").trim().slice(0, 60)}"`,
    rings: rings.filter(Boolean).length,
    // Chromium gives time and date fields one more stop, on their own clock or calendar button, which
    // the browser rings itself (black on light, light on dark); the field then does not match :focus.
    pickerButton: /^(time|date|datetime-local)$/.test(el.type) && !el.matches(":focus"),
    contrast: Math.max(0, ...rings.filter(Boolean).map(c => contrast(c, behind))),
    // The skip link's target (and where a #main address puts focus): a landmark, not a control.
    skipTarget: el.id === "main",
    onScreen: box.width > 0 && box.height > 0 && box.bottom > 0 && box.top < innerHeight && box.right > 0 && box.left < innerWidth,
  };
}"""


def _focus(page: Page) -> dict | None:
    return page.evaluate(FOCUS)


def _assert_focus_shows(page: Page) -> dict:
    state = _focus(page)
    assert state is not None, f"focus was lost (it is on the page body) at {page.url}"
    assert state["onScreen"], f"{state['label']} has focus but is off screen at {page.url}"
    if state["pickerButton"] or state["skipTarget"]:
        return state
    _assert_named(page, state)
    assert state["rings"], f"{state['label']} has focus but no outline or box-shadow at {page.url}"
    assert state["contrast"] >= 3, f"{state['label']}: focus ring contrast {state['contrast']:.2f}:1 (under 3:1) at {page.url}"
    return state


def _assert_named(page: Page, state: dict) -> None:
    """What a screen reader says on arriving: a role and a name (a live status reads out its text)."""
    spoken = page.locator(":focus").aria_snapshot().splitlines()[0]  # like: - button "Approve"
    if state["tag"] == "summary":
        # <summary> has no ARIA role in Playwright's tree; browsers expose it as a disclosure button.
        assert re.match(r"^- text: \S", spoken), f"unnamed <summary> at {page.url}: {spoken}"
        return
    named = re.match(r"""^- '?[a-z]+ ".*\S.*"(?: \[[a-z]+\])*'?:?$""", spoken) or re.match(r"^- (status|alert): \S", spoken)
    assert named, f"{state['label']} has focus but no role and name for a screen reader at {page.url}: {spoken}"


def _has_focus(target: Locator) -> bool:
    return target.count() == 1 and target.evaluate("el => el === document.activeElement")


def _tab_to(page: Page, target: Locator, *, key: str = "Tab", limit: int = 40) -> list[str]:
    """Press Tab (or Shift+Tab) until ``target`` has focus; every stop on the way must show its focus."""
    stops: list[str] = []
    for _ in range(limit):
        page.keyboard.press(key)
        if _has_focus(target):
            _assert_focus_shows(page)
            expect(target).to_be_focused()
            return stops
        state = _focus(page)
        if state is None:
            stops.append("(past the end of the page)")
            continue
        _assert_focus_shows(page)
        stops.append(state["label"])
    pytest.fail(f"{target} cannot be reached with {key} at {page.url}; stops: {stops}")


def _arrow_to(page: Page, target: Locator, *, limit: int = 8) -> None:
    """Move through a radio group with the Down arrow, which also checks each radio it lands on.

    Tab into a group where nothing is chosen yet lands on its first radio without choosing it: if that
    is the one wanted, Space chooses it.
    """
    for _ in range(limit):
        if _has_focus(target):
            break
        page.keyboard.press("ArrowDown")
        _assert_focus_shows(page)
    expect(target).to_be_focused()
    if not target.is_checked():
        page.keyboard.press("Space")
    expect(target).to_be_checked()


def _walk_round(page: Page) -> None:
    """Tab through the whole page and back to where we began, then the same with Shift+Tab: no trap."""
    page.keyboard.press("Tab")
    start = _assert_focus_shows(page)
    page.evaluate("window.__walkStart = document.activeElement")
    for key in ("Tab", "Shift+Tab"):
        stops = [start["label"]]
        for _ in range(120):
            page.keyboard.press(key)
            if page.evaluate("document.activeElement === window.__walkStart"):
                break
            state = _focus(page)
            if state is not None:
                _assert_focus_shows(page)
            stops.append(state["label"] if state else "(past the end of the page)")
        else:
            pytest.fail(f"{key} never comes back round at {page.url}: a keyboard trap? stops: {stops[-15:]}")
        assert len(stops) > 2, f"{key} goes nowhere at {page.url}: {stops}"
    page.evaluate("delete window.__walkStart")


def _skip_link_works(page: Page) -> None:
    """The first Tab lands on a visible "Skip to content" link, and Enter takes focus into the main content."""
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    _assert_focus_shows(page)
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")
    assert page.evaluate("document.querySelector('main').contains(document.activeElement)"), "Tab after the skip link leaves main"
    _assert_focus_shows(page)


def _enter_to_a_new_page(page: Page) -> None:
    """Press Enter on a link or submit button and wait for the page it leads to."""
    with page.expect_navigation():
        page.keyboard.press("Enter")


def _sign_in_by_keyboard(page: Page, email: str) -> None:
    expect(page).to_have_url(re.compile(r"/sign-in"))
    _skip_link_works(page)
    _tab_to(page, page.get_by_role("textbox", name="Email"))
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    _assert_focus_shows(page)
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_focused()
    _assert_focus_shows(page)
    _enter_to_a_new_page(page)
    assert_signed_in(page)


def _latest(live_server, requester_name: str) -> PermissionRequest:
    with live_server.app_context():
        db.session.rollback()
        found = db.session.scalars(db.select(PermissionRequest).order_by(PermissionRequest.id.desc())).all()
        return next(r for r in found if r.requester.display_name == requester_name)


def test_j2_ask_at_the_door_by_keyboard(live_server, new_phone, frozen_clock):
    frozen_clock.set(NINE_AM)
    with live_server.app_context():
        admin = make_user(Role.ADMIN)
        head = make_user(Role.APPROVER, name="Mrs A Adeyemi")
        teacher = make_user(name="Mr B Clarke")
        make_device(teacher, kind="smartwatch", make="Apple", model="Watch Series 9")
        make_device(teacher, make="Apple", model="iPhone 13")
        token = make_area(admin, "Year 3 classroom").poster_token
        head_id, teacher_email = head.id, teacher.email

    page = new_phone().new_page()
    # The poster's QR opens /a/<token>; not signed in, so sign in (by keyboard) and come back.
    page.goto(f"/a/{token}")
    _sign_in_by_keyboard(page, teacher_email)
    expect(page).to_have_url(re.compile(rf"/a/{token}(#main)?$"))
    expect(page.get_by_role("heading", name="Take a device into Year 3 classroom?")).to_be_visible()
    _walk_round(page)

    # Tab reaches the device group (two devices, so nothing is chosen for them); arrows choose the phone.
    _tab_to(page, page.get_by_role("group", name="Which device?").get_by_role("radio").first)
    _arrow_to(page, page.get_by_role("radio", name="Apple iPhone 13"))
    expect(page.get_by_role("radio", name="Apple Watch Series 9")).not_to_be_checked()
    # Tab moves into the next group; the Down arrow chooses within it.
    page.keyboard.press("Tab")
    expect(page.get_by_role("radio", name="Medical need")).to_be_focused()
    _arrow_to(page, page.get_by_role("radio", name="Expecting an urgent call"))
    _tab_to(page, page.get_by_role("radio", name="Until the end of this lesson"))
    _arrow_to(page, page.get_by_role("radio", name="For 1 hour"))
    _tab_to(page, page.get_by_role("button", name="Ask permission"))
    _enter_to_a_new_page(page)

    # The status page says "waiting" in a live region, and updates by itself.
    status = page.locator("#status-text")
    expect(status).to_have_text(re.compile("Waiting for a decision"))
    assert status.get_attribute("role") == "status" or status.get_attribute("aria-live") in ("polite", "assertive")
    page.evaluate("window.__samePage = true")  # survives only if the page never reloads
    withdraw = page.get_by_role("button", name="Withdraw")
    _tab_to(page, withdraw)

    # The head approves (through the app's service) while focus rests on Withdraw, which then goes away.
    asked = _latest(live_server, "Mr B Clarke")
    with live_server.app_context(), write_intent():
        permissions.decide(
            db.session,
            db.session.get(User, head_id),
            asked.id,
            "approve",
            note="Back by break, please",
            until=datetime(2026, 11, 25, 9, 40, tzinfo=UTC),
        )
        db.session.commit()
    expect(status).to_have_text("Approved until 09:40 by Mrs A Adeyemi", timeout=SLOW_POLL)
    expect(page.locator("#status-note")).to_have_text("Note: Back by break, please")
    assert page.evaluate("window.__samePage === true"), "the status page reloaded"
    expect(withdraw).to_be_hidden()
    # Focus is not dropped on the page body when the focused button disappears: it moves to the news.
    expect(status).to_be_focused()
    _assert_focus_shows(page)

    # "I've left the room" is the next stop, and Enter ends the permission.
    left = page.get_by_role("button", name="I've left the room")
    page.keyboard.press("Tab")
    expect(left).to_be_focused()
    _assert_focus_shows(page)
    _walk_round(page)
    _tab_to(page, left)
    _enter_to_a_new_page(page)
    expect(page.locator(".flashes")).to_contain_text("Thank you: your permission has ended.")
    expect(status).to_contain_text("you left the room")
    expect(left).to_be_hidden()
    assert _latest(live_server, "Mr B Clarke").status == "ended"


def test_j3_approve_and_deny_from_the_inbox_by_keyboard(live_server, new_phone, frozen_clock):
    frozen_clock.set(NINE_AM)
    with live_server.app_context():
        admin = make_user(Role.ADMIN)
        head = make_user(Role.APPROVER, name="Mrs A Adeyemi")
        clarke = make_user(name="Mr B Clarke")
        davies = make_user(name="Ms C Davies")
        area = make_area(admin, "Year 3 classroom")
        ask(clarke, area, make_device(clarke, make="Apple", model="iPhone 13"))
        frozen_clock.advance(minutes=2)
        ask(davies, area, make_device(davies, make="Samsung", model="Galaxy S23"), reason="lesson_activity")
        head_email = head.email
    frozen_clock.advance(minutes=3)

    page = new_phone().new_page()
    page.goto("/sign-in")
    _sign_in_by_keyboard(page, head_email)

    # From the home page to the inbox through the main navigation, by Tab alone.
    nav = page.get_by_role("navigation", name="Main")
    _tab_to(page, nav.get_by_role("link", name="Approvals"))
    _enter_to_a_new_page(page)
    expect(page).to_have_url(re.compile(r"/approvals(#main)?$"))
    expect(page.get_by_role("heading", name="Approvals", exact=True)).to_be_visible()
    _walk_round(page)

    # Oldest first: Mr B Clarke's request. Approve with a note and a shorter end time.
    cards = page.get_by_role("list", name="Waiting for a decision").get_by_role("listitem")
    expect(cards).to_have_count(2)
    first = cards.nth(0)
    expect(first).to_contain_text("Mr B Clarke: Apple iPhone 13 into Year 3 classroom until 10:00")
    _tab_to(page, first.locator("summary"))
    page.keyboard.press("Enter")
    note = first.get_by_role("textbox", name="Note (optional)")
    page.keyboard.press("Tab")
    expect(note).to_be_focused()
    _assert_focus_shows(page)
    page.keyboard.type("Back by break, please")
    page.keyboard.press("Tab")
    until = first.get_by_label("Shorter end time (optional)")
    expect(until).to_be_focused()
    _assert_focus_shows(page)
    page.keyboard.type("0940")
    if not until.input_value():  # the browser shows a 12-hour clock: its last field is AM or PM
        page.keyboard.type("A")
    expect(until).to_have_value("09:40")
    _tab_to(page, first.get_by_role("button", name="Approve"))
    _enter_to_a_new_page(page)
    expect(page.locator(".flashes")).to_contain_text("Approved: Mr B Clarke, Apple iPhone 13 in Year 3 classroom.")

    # The inbox now holds only Ms C Davies's request: Deny it with a note (Space opens the note this time).
    expect(cards).to_have_count(1)
    only = cards.nth(0)
    expect(only).to_contain_text("Ms C Davies: Samsung Galaxy S23 into Year 3 classroom")
    _tab_to(page, only.locator("summary"))
    page.keyboard.press("Space")
    _tab_to(page, only.get_by_role("textbox", name="Note (optional)"))
    page.keyboard.type("Not during the phonics assessment, sorry")
    _tab_to(page, only.get_by_role("button", name="Deny"))
    _enter_to_a_new_page(page)
    expect(page.locator(".flashes")).to_contain_text("Denied: Ms C Davies, Samsung Galaxy S23 in Year 3 classroom.")
    expect(page.get_by_text("Nothing is waiting.")).to_be_visible()

    approved, denied = _latest(live_server, "Mr B Clarke"), _latest(live_server, "Ms C Davies")
    assert (approved.status, approved.decision_note) == ("approved", "Back by break, please")
    assert approved.approved_until.astimezone(UTC) == datetime(2026, 11, 25, 9, 40, tzinfo=UTC)
    assert (denied.status, denied.decision_note) == ("denied", "Not during the phonics assessment, sorry")

    # The Now board, reached through the navigation's More page (not a main task on a phone), lists the
    # approved one only.
    _tab_to(page, page.get_by_role("navigation", name="Main").get_by_role("link", name="More"))
    _enter_to_a_new_page(page)
    _tab_to(page, page.get_by_role("list", name="Everything").get_by_role("link", name="Now"))
    _enter_to_a_new_page(page)
    expect(page).to_have_url(re.compile(r"/now(#main)?$"))
    rows = page.get_by_role("row").filter(has_text="Year 3 classroom")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Mr B Clarke")
    expect(rows.first).to_contain_text("09:40")
    _walk_round(page)


def test_focus_shows_on_every_stop_in_dark_mode(live_server, new_phone, frozen_clock):
    """The ring swaps its colours in dark mode; walk the door page and the inbox there too."""
    frozen_clock.set(NINE_AM)
    with live_server.app_context():
        admin = make_user(Role.ADMIN)
        head = make_user(Role.APPROVER, name="Mrs A Adeyemi")
        clarke = make_user(name="Mr B Clarke")
        area = make_area(admin, "Year 3 classroom")
        ask(clarke, area, make_device(clarke, make="Apple", model="iPhone 13"))
        emails, token = (clarke.email, head.email), area.poster_token

    for email, path in zip(emails, (f"/a/{token}", "/approvals"), strict=True):
        page = new_phone(color_scheme="dark").new_page()
        page.goto(path)
        _sign_in_by_keyboard(page, email)
        expect(page.locator("h1")).to_be_visible()
        _walk_round(page)
        _tab_to(page, page.get_by_role("button").filter(has_text=re.compile("^(Ask permission|Approve)$")).first)
