"""Issue 16: Home says what to do now for each role, the navigation counts what waits, the door scanner
opens only this site's posters, and notices follow the request they are about."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app.clock import local_today
from app.models import Role
from app.services import permissions
from tests.conftest import csrf_token
from tests.equipment_factories import lend, make_asset
from tests.factories import make_device, make_user, sign_in
from tests.permission_factories import Browser, ask, committed, fresh, make_area


@pytest.fixture
def school(app, frozen_clock):
    people = {
        "head": make_user(Role.APPROVER, name="Mrs A Adeyemi"),
        "admin": make_user(Role.ADMIN, name="Mr T Hughes"),
        "office": make_user(Role.OFFICE, name="Ms O Brennan"),
        "staff": make_user(name="Mr B Clarke"),
    }
    people["phone"] = make_device(people["staff"], model="iPhone 13")
    people["area"] = make_area(people["admin"], "Year 3 classroom")
    return people


def browser_for(app, user) -> Browser:
    browser = Browser(app)
    sign_in(browser, user)
    return browser


def text(response) -> str:
    return response.get_data(as_text=True)


def test_the_heads_home_lists_waiting_requests_and_deciding_there_comes_back_home(app, school):
    asked = ask(school["staff"], school["area"], school["phone"])
    head = browser_for(app, school["head"])
    home = text(head.get("/"))
    assert 'aria-label="Waiting for a decision"' in home
    assert "Mr B Clarke: Apple iPhone 13 into Year 3 classroom" in home
    assert f'action="/approvals/{asked.id}/decision"' in home and 'name="back" value="home"' in home
    assert re.search(r'>Approvals</span> <span class="badge" data-pending-count>1<span class="visually-hidden"> waiting', home)
    response = head.post(
        f"/approvals/{asked.id}/decision",
        data={"csrf_token": csrf_token(head, "/"), f"r{asked.id}-decision": "approve", "back": "home"},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"
    home = text(head.get("/"))
    assert "Approved: Mr B Clarke, Apple iPhone 13 in Year 3 classroom." in home
    assert "Nothing is waiting." in home and "data-pending-count" not in home
    assert fresh(asked).status == "approved"


def test_staff_home_shows_the_permission_in_force_the_scanner_and_what_to_set_up(app, school):
    staff = browser_for(app, school["staff"])
    home = text(staff.get("/"))
    assert "You have no permission in force just now." in home
    assert 'href="/scan"' in home and "Scan a door poster" in home
    assert "Set up notifications" in home  # no push subscription yet
    assert "Register your phone" not in home  # they have one
    asked = ask(school["staff"], school["area"], school["phone"])
    assert "Apple iPhone 13 into Year 3 classroom: waiting for a decision" in text(staff.get("/"))
    committed(permissions.decide, school["head"], asked.id, "approve")
    home = text(staff.get("/"))
    assert "Apple iPhone 13 in Year 3 classroom until 10:00" in home
    assert f'action="/requests/{asked.id}/end"' in home and "I've left the room" in home
    newcomer = browser_for(app, make_user(name="Miss N New"))
    assert "Register your phone" in text(newcomer.get("/"))


def test_the_offices_home_lists_overdue_loans_and_todays_returns(app, school, frozen_clock):
    office, borrower = school["office"], school["staff"]
    lend(office, make_asset(office, tag="CAM-001", name="Canon camera"), borrower, due_on=local_today())
    lend(office, make_asset(office, tag="IPAD-07", name="iPad"), borrower, due_on=local_today() + timedelta(days=1))
    frozen_clock.advance(days=1)
    lend(office, make_asset(office, tag="MIC-02", name="Microphone"), borrower, due_on=local_today())
    home = text(browser_for(app, office).get("/"))
    overdue = home[home.index('id="overdue-heading"') : home.index('id="due-today-heading"')]
    due_today = home[home.index('id="due-today-heading"') :]
    assert "CAM-001" in overdue and "IPAD-07" not in overdue and "MIC-02" not in overdue
    assert "IPAD-07" in due_today and "MIC-02" in due_today and "CAM-001" not in due_today.split("Your devices")[0]
    assert "Waiting for a decision" not in text(browser_for(app, school["staff"]).get("/")).split("Devices in class")[0]


def test_the_door_scanner_opens_only_this_sites_posters(app, school):
    staff = browser_for(app, school["staff"])
    token = school["area"].poster_token
    base = app.config["BASE_URL"]
    ours = staff.get("/scan", query_string={"link": f"{base}/a/{token}"})
    assert ours.status_code == 302 and ours.headers["Location"] == f"/a/{token}"
    for foreign in (f"https://evil.example/a/{token}", f"{base}/t/CAM-001", "javascript:alert(1)", f"{base}/a/{token}/../x"):
        refused = staff.get("/scan", query_string={"link": foreign})
        assert refused.status_code == 422, foreign
        assert "not a link from one of this school&#39;s Lanyard door posters" in text(refused)


def test_the_door_form_preselects_the_device_used_last(app, school):
    watch = make_device(school["staff"], make="Apple", model="Watch Series 9", kind="smartwatch")
    staff = browser_for(app, school["staff"])
    path = f"/a/{school['area'].poster_token}"
    page = text(staff.get(path))
    assert "checked" not in page.split('name="reason"')[0].split("Which device?")[1]  # two devices, none used yet
    committed(permissions.withdraw, school["staff"], ask(school["staff"], school["area"], watch).id)
    page = text(staff.get(path))
    assert re.search(rf'checked[^>]*value="personal-{watch.id}"|value="personal-{watch.id}"[^>]*checked', page)


def test_notices_follow_their_request_and_decided_ones_stop_counting_as_new(app, school):
    asked = ask(school["staff"], school["area"], school["phone"])
    head = browser_for(app, school["head"])
    notices = text(head.get("/notices"))
    assert "Now: Waiting for a decision" in notices and "<strong>New</strong>" in notices
    assert re.search(r'class="notices-link" href="/notices">Notices <span class="badge">1<', text(head.get("/")))
    committed(permissions.decide, school["head"], asked.id, "deny", note="Not today")
    notices = text(head.get("/notices"))
    assert "Now: Denied by Mrs A Adeyemi" in notices
    assert "<strong>New</strong>" not in notices
    assert 'class="notices-link" href="/notices">Notices</a>' in text(head.get("/"))
    assert head.get("/api/v1/me").get_json()["unread_notices"] == 0
    # The requester's notice of the decision is news until read, and shows the state too.
    staff = browser_for(app, school["staff"])
    mine = text(staff.get("/notices"))
    assert "Now: Denied by Mrs A Adeyemi" in mine and "<strong>New</strong>" in mine


def test_the_more_page_lists_everything_in_the_navigation(app, school):
    page = text(browser_for(app, school["head"]).get("/more"))
    for label in ("Approvals", "Now", "Standing", "Cover", "My requests", "Notices", "Account"):
        assert f">{label}" in page, label
