"""The staff CSV import in Chromium: choose a file, read the preview, opt in to deactivating leavers, apply."""

from __future__ import annotations

import re

import sqlalchemy as sa
from playwright.sync_api import expect

from app.extensions import db
from app.models import Role, User
from tests.browser.conftest import sign_in_page
from tests.factories import PASSWORD, make_user

CSV = """name,email,roles,staff type,end date
Mrs A Patel,a.patel@school.test,approver,employee,
Ms C Davies,c.davies@school.test,,volunteer,31/07/2099
"""


def test_an_admin_previews_and_applies_a_staff_file(live_server, new_phone, tmp_path):
    with live_server.app_context():
        admin = make_user(Role.ADMIN, name="Mr T Hughes")
        make_user(Role.APPROVER, name="Mrs A Patel", email="a.patel@school.test")
        leaver = make_user(name="Mr L Eaver", email="l.eaver@school.test")
        admin_email, leaver_id = admin.email, leaver.id
    staff_file = tmp_path / "staff.csv"
    staff_file.write_text(CSV, encoding="utf-8")

    page = new_phone().new_page()
    sign_in_page(page, admin_email, PASSWORD)
    page.goto("/admin/staff")
    page.get_by_role("link", name="Import from CSV").click()
    page.get_by_label("CSV file of staff").set_input_files(str(staff_file))
    page.get_by_role("button", name="Preview changes").click()

    expect(page.get_by_role("heading", name="Check the staff import")).to_be_visible()
    expect(page.get_by_role("heading", name="New (1)")).to_be_visible()
    expect(page.get_by_text("Ms C Davies")).to_be_visible()
    expect(page.get_by_text("ends 31/07/2099")).to_be_visible()
    expect(page.get_by_role("heading", name="Not in the file (1)")).to_be_visible()
    page.get_by_label("Deactivate those not in the file").check()
    page.get_by_role("button", name="Apply these changes").click()

    expect(page.get_by_role("heading", name="Staff imported")).to_be_visible()
    expect(page.get_by_text("1 added, 0 changed, 1 deactivated.")).to_be_visible()
    expect(page.get_by_label("Ms C Davies (c.davies@school.test)")).to_have_value(
        re.compile(r"^https?://[^ ]+/set-password/[^/ ]+$")
    )
    with live_server.app_context():
        assert db.session.get(User, leaver_id).is_active_account is False
        davies = db.session.scalar(sa.select(User).where(User.email == "c.davies@school.test"))
        assert davies.staff_type == "volunteer"

    page.goto("/admin/staff?type=volunteer")
    expect(page.get_by_text("Volunteer, ends 31/07/2099")).to_be_visible()
