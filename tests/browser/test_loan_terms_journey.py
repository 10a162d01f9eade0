"""The borrower's terms in Chromium at 390x844: the office lends a camera without the tick, the teacher
opens the notice's page on their own phone, reads the terms with the due date and taps "I accept"; the
office's asset page then shows the acceptance. axe checks the terms page."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import sqlalchemy as sa
from playwright.sync_api import expect

from app.clock import local_today
from app.extensions import db
from app.models import Loan, Notification, Role
from tests.browser.conftest import sign_in_page
from tests.browser.test_accessibility import _violations
from tests.equipment_factories import lend, make_asset
from tests.factories import PASSWORD, make_user

IPHONE = {"width": 390, "height": 844}


def _shot(page, name: str) -> None:
    if os.environ.get("LANYARD_SCREENSHOTS"):  # to look at: the page as the borrower sees it
        page.screenshot(path=os.path.join(os.environ["LANYARD_SCREENSHOTS"], f"{name}-390x844.png"), full_page=True)


def test_the_borrower_accepts_the_terms_on_their_own_phone(live_server, new_phone):
    with live_server.app_context():
        office = make_user(Role.OFFICE, name="Ms O Brennan")
        teacher = make_user(name="Mr B Clarke")
        office_email, teacher_email = office.email, teacher.email
        asset = make_asset(office, tag="CAM-200", name="Canon camera")
        due = local_today() + timedelta(days=4)
        loan = lend(office, asset, teacher, due_on=due, condition="Good; strap included")
        loan_id, asset_id = loan.id, asset.id
        notice_url = db.session.scalar(sa.select(Notification.url).where(Notification.user_id == teacher.id))
    assert notice_url == f"/loans/{loan_id}/terms"

    phone = new_phone(viewport=IPHONE).new_page()
    sign_in_page(phone, teacher_email, PASSWORD)
    phone.goto("/my-loans")
    mine = phone.get_by_role("list", name="Equipment you have")
    expect(mine).to_contain_text("Terms not yet accepted")
    mine.get_by_role("link", name="Read and accept the terms for CAM-200").click()
    expect(phone).to_have_url(re.compile(rf"/loans/{loan_id}/terms$"))
    expect(phone.get_by_role("heading", name="Terms for CAM-200 Canon camera", level=1)).to_be_visible()
    expect(phone.get_by_role("region", name="The school's terms")).to_contain_text("not for unauthorised personal use")
    expect(phone.get_by_text(f"{due:%d/%m/%Y}")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= IPHONE["width"]
    assert _violations(phone) == []
    _shot(phone, "loan-terms")
    phone.get_by_role("button", name="I accept").click()
    expect(phone).to_have_url(re.compile(r"/my-loans$"))
    expect(phone.get_by_role("status").first).to_contain_text("you have accepted the terms for CAM-200")
    expect(phone.get_by_role("list", name="Equipment you have")).to_contain_text("Terms accepted")
    assert _violations(phone) == []
    _shot(phone, "loan-terms-accepted")

    with live_server.app_context():
        accepted = db.session.get(Loan, loan_id)
        assert accepted is not None and accepted.terms_accepted_via == "own_phone"

    desk = new_phone().new_page()
    sign_in_page(desk, office_email, PASSWORD)
    desk.goto(f"/equipment/{asset_id}")
    expect(desk.get_by_text("Terms accepted on their own phone")).to_be_visible()
