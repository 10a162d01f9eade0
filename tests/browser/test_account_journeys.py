"""Account journeys in Chromium: passkeys with the virtual authenticator; a leaver's open session ends."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from app.models import Role
from tests.browser.conftest import sign_in_page
from tests.factories import PASSWORD, make_user


def _virtual_authenticator(context, page) -> None:
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )


def test_an_approver_registers_a_passkey_and_signs_in_with_it(live_server, new_phone):
    # WebAuthn needs a domain as its relying party ID: an IP address is not allowed, localhost is.
    origin = live_server.url.replace("127.0.0.1", "localhost")
    live_server.app.config["BASE_URL"] = origin
    with live_server.app_context():
        email = make_user(Role.APPROVER, name="Mrs A Adeyemi").email
    context = new_phone(base_url=origin)
    page = context.new_page()
    _virtual_authenticator(context, page)

    page.goto("/sign-in")
    sign_in_page(page, email, PASSWORD)
    page.goto("/account/passkeys")
    page.get_by_label("Name for this passkey").fill("Head's iPhone")
    page.get_by_role("button", name="Add a passkey on this device").click()
    expect(page.get_by_role("status").first).to_contain_text("Passkey added")
    expect(page.get_by_role("heading", name="Head's iPhone")).to_be_visible()

    page.get_by_role("button", name="Sign out Mrs A Adeyemi").click()
    expect(page.get_by_role("heading", name="Sign in to Lanyard")).to_be_visible()
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("heading", name="Hello, Mrs A Adeyemi")).to_be_visible()


def test_an_admin_deactivates_a_teacher_whose_open_session_is_then_refused(live_server, new_phone):
    with live_server.app_context():
        admin = make_user(Role.ADMIN, name="Mr T Hughes")
        teacher = make_user(name="Mr Leaver")
        admin_email, teacher_email, teacher_id = admin.email, teacher.email, teacher.id
    teacher_phone = new_phone().new_page()
    sign_in_page(teacher_phone, teacher_email, PASSWORD)
    teacher_phone.goto("/devices")
    expect(teacher_phone.get_by_role("heading", name="My devices")).to_be_visible()

    admin_desk = new_phone().new_page()
    sign_in_page(admin_desk, admin_email, PASSWORD)
    admin_desk.goto(f"/admin/staff/{teacher_id}")
    admin_desk.get_by_role("link", name="Deactivate (leaver): signs them out everywhere").click()
    admin_desk.get_by_role("button", name=re.compile(r"^Deactivate ")).click()
    expect(admin_desk.get_by_role("status").first).to_contain_text("deactivated")

    teacher_phone.goto("/devices")
    expect(teacher_phone.get_by_role("heading", name="Sign in to Lanyard")).to_be_visible()
    expect(teacher_phone.get_by_text("You were signed out")).to_be_visible()
