"""The policy gate in Chromium: a teacher signs in, is shown the school's policy, accepts it and lands
on Home; the office then sees the acceptance. axe checks the gate's page and the coverage view."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect

from app.clock import local_today
from app.database import write_intent
from app.extensions import db
from app.models import Role
from app.policy.demo import POLICY_TEXT
from app.services import policy
from tests.browser.conftest import sign_in_page
from tests.browser.test_accessibility import _violations
from tests.factories import PASSWORD, make_user


def test_a_teacher_accepts_the_policy_at_sign_in_and_reaches_home(live_server, new_phone):
    with live_server.app_context():
        admin = make_user(Role.ADMIN, name="Mr T Hughes")
        office = make_user(Role.OFFICE, name="Ms O Brennan")
        teacher = make_user(name="Mr B Clarke")
        with write_intent():
            version = policy.publish_policy(
                db.session,
                admin,
                policy.PolicyDraft(
                    label="2026",
                    title="Social Networking Policy",
                    body=POLICY_TEXT.read_text(encoding="utf-8"),
                    pdf=b"",
                    review_date=local_today() + timedelta(days=200),
                ),
            )
            policy.accept_policy(db.session, office, version.id)
            db.session.commit()
        teacher_email, office_email = teacher.email, office.email

    page = new_phone().new_page()
    sign_in_page(page, teacher_email, PASSWORD)
    expect(page.get_by_role("heading", name="Social Networking Policy", level=1)).to_be_visible()
    expect(page.get_by_role("region", name="The policy's text")).to_contain_text(
        "Keep a record of their phone's unique international"
    )
    assert _violations(page) == []
    page.goto("/devices")  # any page leads back to the policy until it is accepted
    expect(page.get_by_role("heading", name="Social Networking Policy", level=1)).to_be_visible()
    page.get_by_role("link", name="Where to report a concern").click()
    expect(page.get_by_role("heading", name="Where to report a concern")).to_be_visible()
    page.get_by_role("link", name="Read the school's policy").click()
    page.get_by_role("button", name="I have read and accept this policy").click()
    expect(page.get_by_role("heading", name="Hello, Mr B Clarke")).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text("you have accepted the policy")

    desk = new_phone().new_page()
    sign_in_page(desk, office_email, PASSWORD)
    desk.goto("/coverage")
    expect(desk.get_by_role("heading", name="Coverage", level=1)).to_be_visible()
    expect(desk.get_by_role("button", name="Remind Mr T Hughes")).to_be_visible()
    expect(desk.get_by_role("button", name="Remind Mr B Clarke")).to_have_count(0)
    assert _violations(desk) == []
    desk.get_by_role("button", name="Remind Mr T Hughes").click()
    expect(desk.get_by_role("status").first).to_contain_text("Reminder sent to 1 person")
