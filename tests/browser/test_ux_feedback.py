"""Issue 16 items 4, 7 and 8 in Chromium: plain push messages, the copy button, focus on the error summary."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from app.models import Role
from tests.browser.conftest import sign_in_page
from tests.factories import PASSWORD, make_user


def test_a_browser_error_is_never_shown_raw(live_server, new_phone):
    with live_server.app_context():
        email = make_user(Role.STAFF).email
    context = new_phone()
    context.grant_permissions(["notifications"], origin=live_server.url)
    context.add_init_script(
        "PushManager.prototype.subscribe = () => Promise.reject(new DOMException('Registration failed - permission denied', 'AbortError'));"
        "PushManager.prototype.getSubscription = () => Promise.resolve(null);"
    )
    page = context.new_page()
    page.goto("/sign-in")
    sign_in_page(page, email, PASSWORD)
    page.goto("/notifications")
    page.get_by_role("button", name="Turn on notifications").click()
    state = page.locator("#push-state")
    expect(state).to_have_text(re.compile(r"^Notifications could not be turned on\. Try again"))
    expect(state).not_to_contain_text("Registration failed")


def test_the_invitation_link_is_shown_whole_and_copied(live_server, chromium):
    with live_server.app_context():
        email = make_user(Role.ADMIN).email
    context = chromium.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url, locale="en-GB")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    sign_in_page(page, email, PASSWORD)
    page.goto("/admin/staff/invite")
    page.get_by_label("Name as colleagues know them").fill("Ms Copy Test")
    page.get_by_label("School email address").fill("copy.test@school.test")
    page.get_by_role("button", name="Create account and make a link").click()
    link = page.locator("#set-password-link")
    expect(link).to_contain_text("/set-password/")
    box = link.bounding_box()
    assert box["x"] + box["width"] <= 390, "the whole link wraps inside the screen"
    page.reload()  # a refresh shows the page again and makes nothing new
    expect(link).to_contain_text("/set-password/")
    page.get_by_role("button", name="Copy the link").click()
    expect(page.get_by_role("status").filter(has_text="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == link.text_content().strip()
    context.close()


def test_after_a_failed_form_focus_is_on_the_error_summary(live_server, new_phone):
    with live_server.app_context():
        email = make_user(Role.ADMIN).email
    page = new_phone().new_page()
    page.goto("/sign-in")
    sign_in_page(page, email, PASSWORD)
    page.goto("/admin/settings")
    page.get_by_label("Usual loan length (days)").fill("soon")
    page.get_by_role("button", name="Save settings").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
