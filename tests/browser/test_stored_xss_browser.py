"""Stored XSS in a real browser: the pages whose scripts put live data on screen, fed hostile data.

Lanyard's strict CSP would block an injected inline script, so "no alert opened" alone proves little:
each page is also checked for what an injection leaves behind even when the CSP stops it (a CSP
violation report, an event-handler attribute, an <img src=x>, an inline script), and the hostile text
must be on screen as text, exactly as it was typed.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import expect

from app.extensions import db
from tests.browser.conftest import sign_in_page
from tests.factories import make_imei
from tests.hostile_data import Hostile, html_problems, seed_hostile_school

PASSWORD = "hostile data password"
STATIC = Path(__file__).resolve().parents[2] / "static"
UNSAFE_SINKS = re.compile(r"\binnerHTML\b|\bouterHTML\b|insertAdjacentHTML|document\.write|\.html\(|eval\(|new Function\(")

# Recorded before any page script runs (Playwright injects it through DevTools, outside the page's CSP).
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + (e.blockedURI || "") + " " + (e.sample || ""));
});
"""
# Whatever an injection would leave in the live DOM, after the scripts have run.
INJECTED = """
() => {
  const found = [];
  for (const element of document.querySelectorAll("*")) {
    for (const attribute of element.attributes) {
      if (attribute.name.startsWith("on")) found.push(element.tagName + " " + attribute.name);
      if (["href", "src", "action", "formaction"].includes(attribute.name) && /^\\s*javascript:/i.test(attribute.value)) {
        found.push(element.tagName + " " + attribute.name + "=" + attribute.value);
      }
    }
    if (element.tagName === "SCRIPT" && !element.src) found.push("inline script");
    if (element.tagName === "IMG" && element.getAttribute("src") === "x") found.push("img src=x");
  }
  return found.concat(window.__violations || []);
}
"""


def _phone(new_phone, dialogs: list[str]):
    context = new_phone()
    context.add_init_script(WATCH)
    page = context.new_page()

    def opened(dialog):
        dialogs.append(f"{page.url}: {dialog.type} {dialog.message!r}")
        dialog.dismiss()

    page.on("dialog", opened)
    return page


def _clean(page) -> list[str]:
    return [f"{page.url}: {p}" for p in page.evaluate(INJECTED) + html_problems(page.content(), raw_markers=False)]


def test_no_unsafe_dom_sinks_in_static_scripts():
    """Everything the app's own scripts show is set with textContent (DESIGN.md section 10)."""
    scripts = sorted((STATIC / "js").glob("*.js"))
    assert scripts, f"no scripts found in {STATIC / 'js'}"
    used = [
        f"{path.relative_to(STATIC)}:{number}: {line.strip()}"
        for path in scripts
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if UNSAFE_SINKS.search(line)
    ]
    assert used == []


def test_live_pages_show_hostile_data_as_text(live_server, new_phone, frozen_clock):
    h = Hostile()
    with live_server.app_context():
        ids = seed_hostile_school(db.session, h, PASSWORD, make_imei)
    dialogs: list[str] = []
    problems: list[str] = []
    pending, approved, denied = ids["request_id"]
    closed_take, open_take = ids["stocktake_id"]

    # The requester's live status page: the poller rewrites the status and the approver's note.
    staff = _phone(new_phone, dialogs)
    sign_in_page(staff, ids["emails"]["staff"], PASSWORD)
    for request_id, note in ((approved, h.values["approval note"]), (pending, "")):
        with staff.expect_response(re.compile(rf"/api/v1/permission-requests/{request_id}$")) as polled:
            staff.goto(f"/requests/{request_id}")
        assert polled.value.ok
        staff.wait_for_timeout(100)  # let the poller's answer reach the page
        if note:
            expect(staff.locator("#status-note-text")).to_have_text(note)
        problems += _clean(staff)
    staff.goto(f"/requests/{denied}")  # settled: the page does not poll
    expect(staff.locator("#status-note-text")).to_have_text(h.values["denial note"])
    problems += _clean(staff)
    for path in (
        "/",
        "/requests",
        "/notices",
        "/devices",
        f"/devices/{ids['device_id'][0]}",
        "/my-loans",
        "/account/tokens",
        "/account/passkeys",
        "/notifications",
        "/my-data",
    ):
        staff.goto(path)
        problems += _clean(staff)
    staff.goto("/notices")
    expect(staff.get_by_text(h.values["approval note"], exact=False).first).to_be_visible()

    # The approver's inbox (polls the API for changes), one request, the Now board and the audit viewer.
    head = _phone(new_phone, dialogs)
    sign_in_page(head, ids["emails"]["head"], PASSWORD)
    with head.expect_response(re.compile(r"/api/v1/permission-requests\?scope=pending$"), timeout=15_000):
        head.goto("/approvals")
    expect(head.locator("main")).to_contain_text(h.values["pending request reason"])
    problems += _clean(head)
    for path in (f"/approvals/{pending}", "/now", "/standing", "/cover", "/audit", "/notices"):
        head.goto(path)
        problems += _clean(head)
    head.goto("/now")
    expect(head.locator("main")).to_contain_text(h.values["area name"])
    head.goto("/audit")  # names from details are shown as plain text in the sentence and the labelled fields
    expect(head.locator("main")).to_contain_text(f"made an API token named “{h.values['api token name']}”")

    # The office's stock-take scanning page: each label read is added to the list by script.
    office = _phone(new_phone, dialogs)
    sign_in_page(office, ids["emails"]["office"], PASSWORD)
    office.goto(f"/equipment/stocktakes/{open_take}")
    office.get_by_label("Type the tag").fill("XSS-001")
    with office.expect_response(re.compile(rf"/api/v1/stocktakes/{open_take}/scans$")):
        office.get_by_role("button", name="Record").click()
    expect(office.locator("#scan-message")).to_have_text(re.compile(re.escape(h.values["asset 1 name"])))
    expect(office.get_by_role("list", name="Scanned labels").get_by_role("listitem").first).to_contain_text(
        h.values["asset 1 name"]
    )
    problems += _clean(office)
    for path in (
        "/equipment",
        f"/equipment/{ids['asset_id'][0]}",
        f"/equipment/stocktakes/{closed_take}",
        "/equipment/loans",
        "/equipment/labels?" + "&".join(f"asset={i}" for i in ids["asset_id"]),
        f"/office/devices/{ids['device_id'][1]}",
        "/audit",
        "/notices",
    ):
        office.goto(path)
        problems += _clean(office)
    office.goto("/audit")
    expect(office.locator("main")).to_contain_text(h.values["school name setting"])  # the setting's new value, as text

    # The admin's pages: people, areas, posters, settings.
    admin = _phone(new_phone, dialogs)
    sign_in_page(admin, ids["emails"]["admin"], PASSWORD)
    for path in (
        "/admin/staff",
        f"/admin/staff/{ids['people']['staff']}",
        "/admin/areas",
        f"/admin/areas/{ids['area_id'][0]}",
        f"/admin/areas/{ids['area_id'][0]}/poster",
        "/admin/areas/posters",
        "/admin/settings",
        "/audit",
    ):
        admin.goto(path)
        problems += _clean(admin)
    expect(admin.locator("main")).to_contain_text(h.values["area name"])

    assert dialogs == [], "a payload opened a dialog"
    assert problems == []
