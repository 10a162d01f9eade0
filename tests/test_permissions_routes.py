"""The permission pages: posters, asking at the door, the live status page, approvals, standing, cover, Now."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.clock import to_local
from app.extensions import db
from app.models import Area, AreaRule, AuditEvent, PermissionRequest, Role, StandingPermission
from app.services import permissions
from tests.conftest import csrf_token
from tests.factories import make_device, make_user, sign_in
from tests.permission_factories import Browser, ask, committed, fresh, make_area


@pytest.fixture
def school(app, frozen_clock):
    people = {
        "head": make_user(Role.APPROVER, name="Mrs A Adeyemi"),
        "deputy": make_user(Role.APPROVER, name="Mr D Okafor"),
        "admin": make_user(Role.ADMIN, name="Mr T Hughes"),
        "office": make_user(Role.OFFICE, name="Ms O Brennan"),
        "staff": make_user(name="Mr B Clarke"),
        "other": make_user(name="Miss C Davies"),
    }
    people["phone"] = make_device(people["staff"], model="iPhone 13")
    people["other_phone"] = make_device(people["other"], make="Samsung", model="Galaxy A54")
    people["area"] = make_area(people["admin"], "Year 3 classroom")
    people["hall"] = make_area(people["admin"], "Hall")
    return people


def browser_for(app, user) -> Browser:
    browser = Browser(app)
    sign_in(browser, user)
    return browser


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def text(response) -> str:
    return response.get_data(as_text=True)


# Asking at the door (J2) -----------------------------------------------------------------------------


def test_scanning_when_signed_out_signs_in_and_comes_back(app, school):
    browser = Browser(app)
    path = f"/a/{school['area'].poster_token}"
    response = browser.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/sign-in?next=/a/{school['area'].poster_token}"
    token = csrf_token(browser, "/sign-in")
    signed_in = browser.post(
        f"/sign-in?next={path}", data={"email": school["staff"].email, "password": "correct horse battery", "csrf_token": token}
    )
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == path
    assert "Take a device into Year 3 classroom?" in text(browser.get(path))


def test_the_door_page_names_the_area_offers_my_devices_and_changes_nothing(app, school):
    browser = browser_for(app, school["staff"])
    before = (count(PermissionRequest), count(AuditEvent))
    page = browser.get(f"/a/{school['area'].poster_token}")
    assert page.status_code == 200
    body = text(page)
    assert "Take a device into Year 3 classroom?" in body
    assert "Apple iPhone 13" in body
    assert "Galaxy A54" not in body  # someone else's phone is never offered
    for label in (
        "Medical need",
        "Expecting an urgent call",
        "Photos or video for learning evidence",
        "Lesson activity",
        "Other",
    ):
        assert label in body
    for label in ("Until the end of this lesson", "For 1 hour", "For the rest of the day", "Until a time I choose"):
        assert label in body
    assert page.headers["Cache-Control"] == "no-store"
    assert (count(PermissionRequest), count(AuditEvent)) == before


@pytest.mark.parametrize("token", ["rotated", "unknown", "x" * 200])
def test_an_out_of_date_poster_never_reaches_a_request_form(app, school, token):
    old = school["area"].poster_token
    committed(permissions_rotate, school["admin"], school["area"].id)
    path_token = {"rotated": old, "unknown": "not-a-real-token", "x" * 200: "x" * 200}[token]
    browser = browser_for(app, school["staff"])
    page = browser.get(f"/a/{path_token}")
    assert page.status_code == 404
    assert "This poster is out of date" in text(page)
    assert 'class="ask-form"' not in text(page)
    posted = browser.post(
        f"/a/{path_token}",
        data={
            "csrf_token": csrf_token(browser, "/requests"),
            "device": f"personal-{school['phone'].id}",
            "reason": "medical",
            "duration": "one_hour",
        },
    )
    assert posted.status_code == 404
    assert count(PermissionRequest) == 0


def permissions_rotate(session, admin, area_id):
    from app.services import areas

    return areas.rotate_poster(session, admin, session.get(Area, area_id))


def test_a_posters_token_only_ever_asks_for_its_own_area(app, school):
    browser = browser_for(app, school["staff"])
    response = browser.post(
        f"/a/{school['hall'].poster_token}",
        data={
            "csrf_token": csrf_token(browser, f"/a/{school['hall'].poster_token}"),
            "device": f"personal-{school['phone'].id}",
            "reason": "urgent_call",
            "duration": "one_hour",
            "area_id": str(school["area"].id),  # a tampered form cannot move it to another area
        },
    )
    assert response.status_code == 302
    (asked,) = db.session.scalars(sa.select(PermissionRequest)).all()
    assert asked.area_id == school["hall"].id


def test_asking_goes_to_the_live_status_page(app, school):
    browser = browser_for(app, school["staff"])
    path = f"/a/{school['area'].poster_token}"
    response = browser.post(
        path,
        data={
            "csrf_token": csrf_token(browser, path),
            "device": f"personal-{school['phone'].id}",
            "reason": "urgent_call",
            "duration": "until",
            "until": "14:20",
        },
    )
    assert response.status_code == 302
    (asked,) = db.session.scalars(sa.select(PermissionRequest)).all()
    assert response.headers["Location"] == f"/requests/{asked.id}"
    assert to_local(asked.wanted_until).strftime("%H:%M") == "14:20"
    page = browser.get(f"/requests/{asked.id}")
    body = text(page)
    assert "Waiting for a decision" in body
    assert f'data-request-id="{asked.id}"' in body
    assert "js/permission-status.js" in body
    assert re.search(r'<form[^>]*id="withdraw-form"(?![^>]*hidden)', body)
    assert re.search(r'<form[^>]*id="end-form"[^>]*hidden', body)
    assert "<script>" not in body and "style=" not in body


def test_a_form_with_mistakes_keeps_what_was_typed(app, school):
    browser = browser_for(app, school["staff"])
    path = f"/a/{school['area'].poster_token}"
    response = browser.post(
        path,
        data={
            "csrf_token": csrf_token(browser, path),
            "device": f"personal-{school['phone'].id}",
            "reason": "other",
            "reason_other": "",
            "duration": "until",
            "until": "08:15",
        },
    )
    assert response.status_code == 422
    body = text(response)
    assert "There is a problem" in body
    assert "Say briefly why you need it." in body
    assert "That time has already passed; choose a later time." in body
    assert 'value="08:15"' in body
    assert re.search(r'value="other"[^>]*checked|checked[^>]*value="other"', body)
    assert re.search(r'value="until"[^>]*checked|checked[^>]*value="until"', body)
    assert count(PermissionRequest) == 0


def test_a_closed_area_shows_why_and_no_form(app, school):
    closed = make_area(school["admin"], "Changing area", AreaRule.CLOSED.value)
    browser = browser_for(app, school["staff"])
    page = browser.get(f"/a/{closed.poster_token}")
    assert page.status_code == 200
    assert "Changing area is closed to devices" in text(page)
    assert 'class="ask-form"' not in text(page)
    posted = browser.post(
        f"/a/{closed.poster_token}",
        data={
            "csrf_token": csrf_token(browser, "/requests"),
            "device": f"personal-{school['phone'].id}",
            "reason": "medical",
            "duration": "one_hour",
        },
    )
    assert posted.status_code == 422
    assert "Changing area is closed to devices" in text(posted)
    assert count(PermissionRequest) == 0
    assert db.session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "permission.refused_by_rule")) == 1


def test_school_devices_only_offers_no_personal_phone(app, school):
    eyfs = make_area(school["admin"], "EYFS unit", AreaRule.SCHOOL_DEVICES_ONLY.value)
    browser = browser_for(app, school["staff"])
    body = text(browser.get(f"/a/{eyfs.poster_token}"))
    assert "for school devices only, and you have no school device on loan" in body
    assert "iPhone 13" not in body
    posted = browser.post(
        f"/a/{eyfs.poster_token}",
        data={
            "csrf_token": csrf_token(browser, "/requests"),
            "device": f"personal-{school['phone'].id}",
            "reason": "medical",
            "duration": "one_hour",
        },
    )
    assert posted.status_code == 422
    assert "personal phones and recording devices are never allowed here" in text(posted)


def test_a_post_without_the_csrf_token_is_refused(app, school):
    browser = browser_for(app, school["staff"])
    response = browser.post(
        f"/a/{school['area'].poster_token}",
        data={"device": f"personal-{school['phone'].id}", "reason": "medical", "duration": "one_hour"},
    )
    assert response.status_code == 400
    assert count(PermissionRequest) == 0
    asked = ask(school["staff"], school["area"], school["phone"])
    head = browser_for(app, school["head"])
    assert head.post(f"/approvals/{asked.id}/decision", data={f"r{asked.id}-decision": "approve"}).status_code == 400
    assert fresh(asked).status == "pending"


# The requester's own requests --------------------------------------------------------------------------


def test_withdraw_and_ive_left_the_room(app, school):
    first = ask(school["staff"], school["area"], school["phone"])
    browser = browser_for(app, school["staff"])
    token = csrf_token(browser, f"/requests/{first.id}")
    assert browser.post(f"/requests/{first.id}/withdraw", data={"csrf_token": token}).status_code == 302
    assert fresh(first).status == "withdrawn"
    assert "You withdrew this request." in text(browser.get(f"/requests/{first.id}"))
    second = ask(school["staff"], school["area"], school["phone"])
    committed(permissions.decide, school["head"], second.id, "approve")
    page = text(browser.get(f"/requests/{second.id}"))
    assert "Approved until 10:00 by Mrs A Adeyemi" in page
    assert browser.post(f"/requests/{second.id}/end", data={"csrf_token": token}).status_code == 302
    assert fresh(second).status == "ended"
    again = browser.post(f"/requests/{second.id}/end", data={"csrf_token": token})
    assert again.status_code == 302
    assert "This permission has already ended." in text(browser.get(again.headers["Location"]))
    listing = text(browser.get("/requests"))
    assert "Withdrawn" in listing and "Ended" in listing


def test_staff_cannot_see_or_change_someone_elses_request(app, school):
    asked = ask(school["staff"], school["area"], school["phone"])
    other = browser_for(app, school["other"])
    token = csrf_token(other, "/requests")
    assert other.get(f"/requests/{asked.id}").status_code == 404
    assert other.post(f"/requests/{asked.id}/withdraw", data={"csrf_token": token}).status_code == 404
    assert other.post(f"/requests/{asked.id}/end", data={"csrf_token": token}).status_code == 404
    assert "Year 3" not in text(other.get("/requests"))
    assert fresh(asked).status == "pending"


@pytest.mark.parametrize(
    "path", ["/approvals", "/approvals/{id}", "/now", "/standing", "/admin/areas", "/admin/areas/new", "/admin/areas/posters"]
)
def test_staff_cannot_open_approver_or_admin_pages(app, school, path):
    asked = ask(school["staff"], school["area"], school["phone"])
    browser = browser_for(app, school["other"])
    assert browser.get(path.format(id=asked.id)).status_code == 403


def test_staff_cannot_decide_through_the_page(app, school):
    asked = ask(school["staff"], school["area"], school["phone"])
    browser = browser_for(app, school["other"])
    token = csrf_token(browser, "/requests")
    response = browser.post(f"/approvals/{asked.id}/decision", data={"csrf_token": token, f"r{asked.id}-decision": "approve"})
    assert response.status_code == 403
    assert fresh(asked).status == "pending"


def test_signed_out_visitors_are_sent_to_sign_in(app, school):
    browser = Browser(app)
    for path in ("/requests", "/approvals", "/now", "/standing", "/cover", "/admin/areas"):
        response = browser.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in"), path


# Deciding (J3) -----------------------------------------------------------------------------------------


def test_the_inbox_lists_oldest_first_and_approves_in_one_tap(app, school, frozen_clock):
    first = ask(school["staff"], school["area"], school["phone"])
    frozen_clock.advance(minutes=1)
    second = ask(school["other"], school["hall"], school["other_phone"])
    head = browser_for(app, school["head"])
    inbox = text(head.get("/approvals"))
    assert inbox.index("Mr B Clarke: Apple iPhone 13 into Year 3 classroom") < inbox.index(
        "Miss C Davies: Samsung Galaxy A54 into Hall"
    )
    assert f'aria-describedby="request-{first.id}-title"' in inbox
    assert f'id="r{second.id}-note"' in inbox
    assert f'data-pending-ids="{first.id},{second.id}"' in inbox and "js/approvals-inbox.js" in inbox
    response = head.post(
        f"/approvals/{first.id}/decision", data={"csrf_token": csrf_token(head, "/approvals"), f"r{first.id}-decision": "approve"}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/approvals"
    assert "Approved: Mr B Clarke, Apple iPhone 13 in Year 3 classroom." in text(head.get("/approvals"))
    assert fresh(first).status == "approved"


def test_deny_with_a_note_and_the_second_approver_is_told_who_decided(app, school):
    asked = ask(school["staff"], school["area"], school["phone"])
    head, deputy = browser_for(app, school["head"]), browser_for(app, school["deputy"])
    head_token, deputy_token = csrf_token(head, "/approvals"), csrf_token(deputy, "/approvals")
    head.post(
        f"/approvals/{asked.id}/decision",
        data={"csrf_token": head_token, f"r{asked.id}-decision": "deny", f"r{asked.id}-note": "Assessment this morning"},
    )
    late = deputy.post(f"/approvals/{asked.id}/decision", data={"csrf_token": deputy_token, f"r{asked.id}-decision": "approve"})
    assert late.status_code == 302
    assert "Mrs A Adeyemi already denied this at 09:00." in text(deputy.get("/approvals"))
    request = fresh(asked)
    assert request.status == "denied" and request.decision_note == "Assessment this morning"
    staff = browser_for(app, school["staff"])
    status_page = text(staff.get(f"/requests/{asked.id}"))
    assert "Denied by Mrs A Adeyemi" in status_page and "Assessment this morning" in status_page


def test_a_bad_shorter_time_keeps_the_note_typed(app, school):
    asked = ask(school["staff"], school["area"], school["phone"])
    head = browser_for(app, school["head"])
    response = head.post(
        f"/approvals/{asked.id}/decision",
        data={
            "csrf_token": csrf_token(head, "/approvals"),
            f"r{asked.id}-decision": "approve",
            f"r{asked.id}-note": "Be quick",
            f"r{asked.id}-until": "11:30",
        },
    )
    assert response.status_code == 422
    body = text(response)
    assert "They asked until 10:00; choose that or earlier." in body
    assert 'value="Be quick"' in body and 'value="11:30"' in body
    assert fresh(asked).status == "pending"


def test_a_shorter_end_time_from_the_one_request_page(app, school):
    asked = ask(school["staff"], school["area"], school["phone"])
    head = browser_for(app, school["head"])
    page = text(head.get(f"/approvals/{asked.id}"))
    assert "Approve" in page and "Deny" in page
    head.post(
        f"/approvals/{asked.id}/decision",
        data={
            "csrf_token": csrf_token(head, "/approvals"),
            "back": "one",
            f"r{asked.id}-decision": "approve",
            f"r{asked.id}-until": "09:30",
        },
    )
    assert to_local(fresh(asked).approved_until).strftime("%H:%M") == "09:30"
    assert "Approved by Mrs A Adeyemi at 09:00, until 09:30." in text(head.get(f"/approvals/{asked.id}"))


def test_an_approver_cannot_decide_their_own_request_on_the_page(app, school):
    head_phone = make_device(school["head"], model="iPhone 15")
    asked = ask(school["head"], school["area"], head_phone)
    head = browser_for(app, school["head"])
    inbox = text(head.get("/approvals"))
    assert "This is your own request: another approver decides it." in inbox
    response = head.post(
        f"/approvals/{asked.id}/decision", data={"csrf_token": csrf_token(head, "/approvals"), f"r{asked.id}-decision": "approve"}
    )
    assert response.status_code == 302
    assert "You cannot decide your own request" in text(head.get("/approvals"))
    assert fresh(asked).status == "pending"


def test_the_now_board_for_approvers_and_office(app, school):
    asked = ask(school["staff"], school["area"], school["phone"])
    committed(permissions.decide, school["head"], asked.id, "approve")
    for who in ("head", "office"):
        board = text(browser_for(app, school[who]).get("/now"))
        assert "Mr B Clarke" in board and "Apple iPhone 13" in board and "Year 3 classroom" in board
        assert "10:00" in board and "60 min left" in board


# Standing permissions and cover -----------------------------------------------------------------------------


def test_grant_list_and_end_a_standing_permission(app, school, frozen_clock):
    head = browser_for(app, school["head"])
    page = text(head.get("/standing"))
    assert "Grant a standing permission" in page
    token = csrf_token(head, "/standing")
    bad = head.post(
        "/standing",
        data={
            "csrf_token": token,
            "person": school["staff"].id,
            "device": 0,
            "starts_on": "2026-11-25",
            "ends_on": "2026-11-20",
            "reason": "Medical need",
        },
    )
    assert bad.status_code == 422
    assert "The last day must be on or after the first day." in text(bad)
    assert 'value="Medical need"' in text(bad)
    response = head.post(
        "/standing",
        data={
            "csrf_token": token,
            "person": school["staff"].id,
            "device": school["phone"].id,
            "areas": [school["area"].id],
            "starts_on": "2026-11-25",
            "ends_on": "2026-12-19",
            "reason": "Medical need",
        },
    )
    assert response.status_code == 302
    listed = text(head.get("/standing"))
    assert "Mr B Clarke" in listed and "Year 3 classroom" in listed and "19/12/2026" in listed
    assert ask(school["staff"], school["area"], school["phone"]).status == "approved"
    standing = db.session.scalars(sa.select(StandingPermission)).one()
    head.post(f"/standing/{standing.id}/end", data={"csrf_token": token})
    db.session.rollback()
    assert db.session.get(StandingPermission, standing.id).ended_at is not None
    assert ask(school["staff"], school["area"], school["phone"]).status == "pending"


def test_im_away_and_delegates(app, school):
    head = browser_for(app, school["head"])
    page = text(head.get("/cover"))
    assert "You are on duty" in page
    token = csrf_token(head, "/cover")
    head.post("/cover/away", data={"csrf_token": token, "away": "1"})
    assert "You are marked away" in text(head.get("/cover"))
    assert "You are marked away" in text(head.get("/approvals"))
    saved = head.post("/cover", data={"csrf_token": token, "delegates": [school["deputy"].id], "escalation_minutes": "7"})
    assert saved.status_code == 302
    assert [u.id for u in permissions.delegates(db.session)] == [school["deputy"].id]
    assert permissions.escalation_minutes(db.session) == 7
    bad = head.post("/cover", data={"csrf_token": token, "delegates": [school["deputy"].id], "escalation_minutes": "500"})
    assert bad.status_code == 422 and "Choose between 1 and 120 minutes." in text(bad)
    ask(school["staff"], school["area"], school["phone"])
    assert "Mr B Clarke" not in text(head.get("/notices"))
    head.post("/cover/away", data={"csrf_token": token, "away": "0", "back": "inbox"})
    assert not permissions.is_away(db.session, school["head"])


# Areas and posters (admin) -----------------------------------------------------------------------------------


def test_admin_creates_edits_and_rotates_an_area(app, school):
    admin = browser_for(app, school["admin"])
    token = csrf_token(admin, "/admin/areas/new")
    duplicate = admin.post("/admin/areas/new", data={"csrf_token": token, "name": "hall", "rule": "ask"})
    assert duplicate.status_code == 422
    assert "There is already an area with this name." in text(duplicate) and 'value="hall"' in text(duplicate)
    created = admin.post("/admin/areas/new", data={"csrf_token": token, "name": "EYFS unit", "rule": "school-devices-only"})
    assert created.status_code == 302
    area = db.session.scalars(sa.select(Area).where(Area.name == "EYFS unit")).one()
    edited = admin.post(
        f"/admin/areas/{area.id}", data={"csrf_token": token, "name": "EYFS unit (Reception)", "rule": "school-devices-only"}
    )
    assert edited.status_code == 302
    old = area.poster_token
    asked = admin.get(f"/admin/areas/{area.id}/rotate")
    assert asked.status_code == 200 and "stops working at once" in text(asked)  # the button asks first
    bare = admin.post(f"/admin/areas/{area.id}/rotate", data={"csrf_token": token})
    assert bare.status_code == 303 and db.session.get(Area, area.id).poster_token == old  # a bare post changes nothing
    admin.post(f"/admin/areas/{area.id}/rotate", data={"csrf_token": token, "confirmed": "yes"})
    db.session.rollback()
    area = db.session.get(Area, area.id)
    assert area.name == "EYFS unit (Reception)"
    assert area.poster_token != old and len(area.poster_token) >= 43
    actions = db.session.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.subject_type == "area", AuditEvent.subject_id == str(area.id))
    ).all()
    assert actions == ["area.created", "area.updated", "area.poster_rotated"]
    assert "Areas and posters" in text(admin.get("/admin/areas"))


def test_posters_carry_a_qr_of_the_configured_base_url_never_the_host_header(app, school):
    admin = browser_for(app, school["admin"])
    session_cookie = admin.client.get_cookie("lanyard_session")
    admin.client.set_cookie("lanyard_session", session_cookie.value, domain="evil.example")
    poster = admin.get(f"/admin/areas/{school['area'].id}/poster", headers={"Host": "evil.example"})
    body = text(poster)
    assert poster.status_code == 200
    assert f"https://lanyard.test/a/{school['area'].poster_token}" in body
    assert "evil.example" not in body
    assert '<svg class="qr" role="img" aria-label="QR code to ask permission for Year 3 classroom"' in body
    assert "style=" not in body and "<script>" not in body
    assert "css/permissions.css" in body
    everything = text(admin.get("/admin/areas/posters"))
    assert everything.count('<section class="poster') == 2
    assert school["hall"].poster_token in everything


def test_api_without_csrf_header_is_refused(app, school):
    browser = browser_for(app, school["staff"])
    response = browser.post(
        "/api/v1/permission-requests",
        json={
            "area_id": school["area"].id,
            "device": f"personal-{school['phone'].id}",
            "reason": "medical",
            "duration": "one_hour",
        },
    )
    assert response.status_code == 403
    assert response.get_json()["type"] == "urn:lanyard:problem:csrf-failed"
    assert count(PermissionRequest) == 0


def test_expired_requests_show_on_the_status_page(app, school, frozen_clock):
    asked = ask(school["staff"], school["area"], school["phone"])
    committed(permissions.decide, school["head"], asked.id, "approve")
    frozen_clock.advance(hours=1, minutes=1)
    committed(permissions.run_jobs, frozen_clock.now)
    body = text(browser_for(app, school["staff"]).get(f"/requests/{asked.id}"))
    assert "Expired at 10:00." in body
    assert re.search(r'<form[^>]*id="end-form"[^>]*hidden', body)
    assert timedelta(hours=1) == fresh(asked).approved_until - fresh(asked).created_at
