"""Issue 15 item 5 in a browser: the audit log reads as sentences, filters by name, passes axe, and is photographed.

Screenshots go to $LANYARD_SCREENSHOTS (or a temporary folder, printed) for someone to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.database import write_intent
from app.demo import DEMO_DOMAIN
from app.extensions import db
from app.models import PermissionRequest, User
from app.services import permissions
from tests.browser.conftest import sign_in_page
from tests.browser.test_accessibility import PASSWORD, _seed, _violations
from tests.browser.test_screens import SIZES


def _approve_the_seeded_request(live_server, request_id: int) -> str:
    """The head approves Mr B Clarke's request; returns the device's name as the filter suggests it."""
    with live_server.app_context(), write_intent():
        head = db.session.scalar(sa.select(User).where(User.email == f"head@{DEMO_DOMAIN}"))
        permissions.decide(db.session, head, request_id, "approve")
        db.session.commit()
        request = db.session.get(PermissionRequest, request_id)
        return f"{request.requester.display_name}'s {request.personal_device.make} {request.personal_device.model}"


@pytest.mark.parametrize("size", sorted(SIZES))
def test_the_office_reads_the_log_as_sentences_and_filters_it_by_name(live_server, chromium, tmp_path, size):
    ids = _seed(live_server)
    device = _approve_the_seeded_request(live_server, ids["request"])
    width, height = SIZES[size]
    folder = Path(os.environ.get("LANYARD_SCREENSHOTS") or tmp_path / "screens")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {folder}")
    context = chromium.new_context(viewport={"width": width, "height": height}, base_url=live_server.url, locale="en-GB")
    page = context.new_page()
    sign_in_page(page, f"office@{DEMO_DOMAIN}", PASSWORD)
    page.goto("/audit")
    approved = page.locator(".audit-events .card").filter(has_text="Mrs A Adeyemi approved")
    expect(approved.first).to_contain_text(f"approved {device} for Year 3 classroom until")
    expect(approved.first.locator("dt", has_text="Area")).to_be_visible()
    expect(page.locator(".audit-events")).not_to_contain_text("permission.approved")
    assert _violations(page) == []
    page.screenshot(path=str(folder / f"audit-{size}.png"), full_page=False)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.get_by_text("Filter the log").click()
    page.get_by_label("Personal device").fill(device)
    page.get_by_label("Kind of event").select_option(label="All: permissions")
    page.get_by_role("button", name="Filter").click()
    cards = page.locator(".audit-events .card")
    expect(cards.first).to_be_visible()
    assert cards.count() >= 2
    for text in cards.all_inner_texts():
        assert device in text or "their" in text, text
    expect(page.get_by_text("Filter the log (filters on)")).to_be_visible()
    expect(page.get_by_label("Personal device")).to_have_value(device)
    assert _violations(page) == []
    page.screenshot(path=str(folder / f"audit-filtered-{size}.png"), full_page=True)
    context.close()


def test_in_a_trust_the_name_boxes_suggest_as_the_office_types(live_server, chromium, monkeypatch):
    """Too many names to list in the page: typing asks the server, and the box's list fills with matches."""
    from app.services import audit_choices

    monkeypatch.setattr(audit_choices, "INLINE_LIMIT", 0)
    _seed(live_server)
    context = chromium.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url, locale="en-GB")
    page = context.new_page()
    sign_in_page(page, f"office@{DEMO_DOMAIN}", PASSWORD)
    page.goto("/audit")
    expect(page.locator("#person-names option")).to_have_count(0)
    page.get_by_text("Filter the log").click()
    page.get_by_role("combobox", name="Person", exact=True).press_sequentially("clar", delay=30)
    expect(page.locator("#person-names option")).to_have_count(1)
    assert page.locator("#person-names option").first.get_attribute("value") == "Mr B Clarke"
    page.get_by_role("combobox", name="Person", exact=True).fill("Mr B Clarke")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".audit-events .card").first).to_contain_text("Mr B Clarke")
    assert _violations(page) == []
    context.close()
