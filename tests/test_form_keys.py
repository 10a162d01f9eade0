"""One tap, one action: one-time form keys, one waiting request per device and area, one device in one place.

A double tap on slow Wi-Fi posts the same form twice. The form's one-time key makes the second post
answer with the first result instead of acting again; the domain refuses a second waiting request and
ends a device's approval elsewhere when it is approved somewhere new.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.clock import local_today, utcnow
from app.extensions import db
from app.models import AuditEvent, FormSubmission, Notification, PermissionRequest, PersonalDevice, RequestStatus, Role
from app.scheduler import run_timed_jobs
from app.services import form_keys, permissions
from tests.conftest import csrf_token
from tests.factories import make_device, make_imei, make_user, sign_in
from tests.permission_factories import Browser, ask, committed, fresh, make_area

FORM_KEY = re.compile(r'name="form_key" value="([^"]+)"')


@pytest.fixture
def school(app, frozen_clock):
    people = {
        "head": make_user(Role.APPROVER, name="Mrs A Adeyemi"),
        "admin": make_user(Role.ADMIN, name="Mr T Hughes"),
        "office": make_user(Role.OFFICE, name="Ms O Brennan"),
        "staff": make_user(name="Mr B Clarke"),
        "other": make_user(name="Miss C Davies"),
    }
    people["phone"] = make_device(people["staff"], model="iPhone 13")
    people["area"] = make_area(people["admin"], "Year 3 classroom")
    people["hall"] = make_area(people["admin"], "Hall")
    return people


def browser_for(app, user) -> Browser:
    browser = Browser(app)
    sign_in(browser, user)
    return browser


def form_fields(browser, path: str) -> dict[str, str]:
    page = browser.get(path).get_data(as_text=True)
    return {
        "csrf_token": re.search(r'name="csrf-token" content="([^"]+)"', page).group(1),
        "form_key": FORM_KEY.search(page).group(1),
    }


def ask_data(school, fields: dict, **extra) -> dict:
    return {**fields, "device": f"personal-{school['phone'].id}", "reason": "urgent_call", "duration": "one_hour", **extra}


def count(model, *where) -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def actions(action: str) -> int:
    return count(AuditEvent, AuditEvent.action == action)


# The form key ------------------------------------------------------------------------------------------


def test_a_double_tap_on_ask_permission_asks_once_and_answers_both_taps_alike(app, school):
    browser = browser_for(app, school["staff"])
    door = f"/a/{school['area'].poster_token}"
    data = ask_data(school, form_fields(browser, door))
    first = browser.post(door, data=data)
    second = browser.post(door, data=data)
    assert first.status_code == 302
    assert second.status_code == 303
    assert second.headers["Location"] == first.headers["Location"]
    assert count(PermissionRequest) == 1
    assert actions("permission.requested") == 1
    assert count(Notification, Notification.kind == "permission.requested") == 1  # one card for the head
    assert count(FormSubmission) == 1
    assert "it was done once" in browser.get(second.headers["Location"]).get_data(as_text=True)


def test_a_double_tap_on_register_device_registers_once_and_alerts_nobody(app, school):
    browser = browser_for(app, school["other"])
    data = {
        **form_fields(browser, "/devices/new"),
        "kind": "smartphone",
        "make": "Google",
        "model": "Pixel 8",
        "imei1": make_imei(),
    }
    first = browser.post("/devices/new", data=data)
    second = browser.post("/devices/new", data=data)
    assert first.status_code == 302 and second.status_code == 303
    assert second.headers["Location"] == first.headers["Location"]
    assert count(PersonalDevice, PersonalDevice.owner_id == school["other"].id) == 1
    assert actions("device.duplicate_imei_refused") == 0
    assert count(Notification, Notification.kind == "device.duplicate_imei") == 0


def test_the_same_key_posted_at_once_from_two_threads_acts_once(app, school):
    browser = browser_for(app, school["staff"])
    door = f"/a/{school['area'].poster_token}"
    data = ask_data(school, form_fields(browser, door))
    barrier = threading.Barrier(2)
    answers = []

    def tap():
        barrier.wait()
        answers.append(browser.post(door, data=data))

    threads = [threading.Thread(target=tap) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(a.status_code for a in answers) == [302, 303]
    assert len({a.headers["Location"] for a in answers}) == 1
    assert count(PermissionRequest) == 1
    assert actions("permission.requested") == 1


def test_a_key_drawn_for_someone_else_is_ignored_never_answered_with_their_result(app, school):
    mine = browser_for(app, school["staff"])
    door = f"/a/{school['area'].poster_token}"
    fields = form_fields(mine, door)
    assert mine.post(door, data=ask_data(school, fields)).status_code == 302
    theirs = browser_for(app, school["other"])
    phone = make_device(school["other"], model="Galaxy A54")
    stolen = {**form_fields(theirs, door), "form_key": fields["form_key"]}
    answer = theirs.post(door, data={**stolen, "device": f"personal-{phone.id}", "reason": "urgent_call", "duration": "one_hour"})
    assert answer.status_code == 302  # acted on as a post without a key: their own request, not a replay
    db.session.rollback()
    own = db.session.scalar(sa.select(PermissionRequest).where(PermissionRequest.requester_id == school["other"].id))
    assert own is not None and answer.headers["Location"] == f"/requests/{own.id}"
    assert count(PermissionRequest) == 2


def test_a_forged_key_signed_for_nobody_is_ignored(app, school):
    browser = browser_for(app, school["staff"])
    door = f"/a/{school['area'].poster_token}"
    fields = form_fields(browser, door)
    forged = form_keys.new_key("not the secret", school["staff"].id)
    assert browser.post(door, data=ask_data(school, {**fields, "form_key": forged})).status_code == 302
    assert count(FormSubmission) == 0


def test_failed_validation_frees_the_key_and_a_redrawn_form_has_a_new_one(app, school):
    browser = browser_for(app, school["staff"])
    door = f"/a/{school['area'].poster_token}"
    fields = form_fields(browser, door)
    refused = browser.post(door, data={**ask_data(school, fields), "reason": ""})
    assert refused.status_code == 422
    assert count(FormSubmission) == 0
    redrawn = FORM_KEY.search(refused.get_data(as_text=True)).group(1)
    assert redrawn != fields["form_key"]
    # The person corrects the form; the browser resends the old key (e.g. a restored page): it is free.
    assert browser.post(door, data=ask_data(school, fields)).status_code == 302
    assert count(PermissionRequest) == 1


def test_an_audited_refusal_frees_the_key_too(app, school):
    """A clash with someone else's IMEI commits its audited attempt, but not the key: the answer was no success."""
    browser = browser_for(app, school["other"])
    data = {
        **form_fields(browser, "/devices/new"),
        "kind": "smartphone",
        "make": "Apple",
        "model": "iPhone",
        "imei1": school["phone"].imei1,
    }
    assert browser.post("/devices/new", data=data).status_code == 422
    assert actions("device.duplicate_imei_refused") == 1
    assert count(FormSubmission) == 0


def test_posts_without_a_key_still_work(app, school):
    browser = browser_for(app, school["staff"])
    door = f"/a/{school['area'].poster_token}"
    data = ask_data(school, {"csrf_token": csrf_token(browser, door)})
    assert browser.post(door, data=data).status_code == 302
    assert count(PermissionRequest) == 1


def test_a_replay_waits_for_the_first_result_then_follows_it(app, school, monkeypatch):
    """The first request has committed its key but not yet recorded where it sent the browser."""
    browser = browser_for(app, school["staff"])
    door = f"/a/{school['area'].poster_token}"
    data = ask_data(school, form_fields(browser, door))
    first = browser.post(door, data=data)
    db.session.rollback()
    db.session.execute(sa.update(FormSubmission).values(status=None, location=None))
    db.session.commit()
    monkeypatch.setattr("app.form_keys.REPLAY_WAIT_SECONDS", 0.2)
    second = browser.post(door, data=data)
    assert second.status_code == 303 and second.headers["Location"] == door  # a sensible page: the door again
    assert first.status_code == 302
    assert count(PermissionRequest) == 1


def test_keys_are_forgotten_after_a_day(app, school, frozen_clock):
    browser = browser_for(app, school["staff"])
    door = f"/a/{school['area'].poster_token}"
    browser.post(door, data=ask_data(school, form_fields(browser, door)))
    assert count(FormSubmission) == 1
    db.session.rollback()
    run_timed_jobs(db.session, utcnow() + timedelta(hours=23), names=["form_keys"])
    assert count(FormSubmission) == 1
    run_timed_jobs(db.session, utcnow() + timedelta(hours=25), names=["form_keys"])
    assert count(FormSubmission) == 0


def test_every_template_form_that_posts_draws_a_form_key():
    templates = sorted((Path(__file__).resolve().parent.parent / "templates").rglob("*.html"))
    assert len(templates) > 20, "the templates were not found"
    posting = 0
    for template in templates:
        for form in re.findall(r"<form\b[^>]*method=\"post\"[^>]*>(.*?)</form>", template.read_text(), re.IGNORECASE | re.DOTALL):
            assert 'name="form_key" value="{{ new_form_key() }}"' in form, template
            posting += 1
    assert posting > 10, "no posting forms were found in the templates"


# One waiting request per device and area ------------------------------------------------------------


def test_a_second_waiting_request_for_the_same_device_and_area_is_refused_with_a_link(app, school):
    first = ask(school["staff"], school["area"], school["phone"])
    browser = browser_for(app, school["staff"])
    door = f"/a/{school['area'].poster_token}"
    answer = browser.post(door, data=ask_data(school, form_fields(browser, door)))
    assert answer.status_code == 409
    page = answer.get_data(as_text=True)
    assert "already asked" in page and f'href="/requests/{first.id}"' in page
    assert count(PermissionRequest) == 1
    # Another area is another request.
    hall = f"/a/{school['hall'].poster_token}"
    assert browser.post(hall, data=ask_data(school, form_fields(browser, hall))).status_code == 302


def test_the_api_refuses_a_second_waiting_request_with_problem_details(app, school):
    first = ask(school["staff"], school["area"], school["phone"])
    browser = browser_for(app, school["staff"])
    token = csrf_token(browser, "/")
    answer = browser.post(
        "/api/v1/permission-requests",
        json={
            "area_id": school["area"].id,
            "device": f"personal-{school['phone'].id}",
            "reason": "urgent_call",
            "duration": "one_hour",
        },
        headers={"X-CSRFToken": token},
    )
    assert answer.status_code == 409
    assert answer.mimetype == "application/problem+json"
    body = answer.get_json()
    assert body["request_id"] == first.id and body["request_url"] == f"/requests/{first.id}"
    assert "already asked" in body["detail"]


def test_asking_again_after_a_decision_is_allowed(app, school):
    first = ask(school["staff"], school["area"], school["phone"])
    committed(permissions.decide, school["head"], first.id, "deny")
    assert ask(school["staff"], school["area"], school["phone"]).status == RequestStatus.PENDING.value


# One device, one place -------------------------------------------------------------------------------


def test_approving_a_device_elsewhere_ends_its_earlier_approval_and_the_board_shows_one_place(app, school):
    in_class = ask(school["staff"], school["area"], school["phone"])
    committed(permissions.decide, school["head"], in_class.id, "approve")
    in_hall = ask(school["staff"], school["hall"], school["phone"])
    committed(permissions.decide, school["head"], in_hall.id, "approve")
    earlier = fresh(in_class)
    assert earlier.status == RequestStatus.ENDED.value
    assert earlier.ended_at is not None and earlier.superseded_by_id == in_hall.id
    db.session.rollback()
    ended = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "permission.ended", AuditEvent.subject_id == str(in_class.id))
    )
    details = json.loads(ended.details)
    assert details["reason"] == "approved for another area" and details["moved_to_area_id"] == school["hall"].id
    assert count(Notification, Notification.kind == "permission.ended", Notification.user_id == school["staff"].id) == 1
    assert [r.id for r in permissions.active_permissions(db.session, utcnow())] == [in_hall.id]
    board = browser_for(app, school["head"]).get("/now").get_data(as_text=True)
    assert board.count("<tr>") == 2  # the header and one device
    assert "moved from Year 3 classroom" in board
    assert "approved elsewhere" in permissions.describe_status(fresh(in_class))


def test_a_standing_permission_and_an_emergency_also_move_the_device(app, school):
    in_class = ask(school["staff"], school["area"], school["phone"])
    committed(permissions.decide, school["head"], in_class.id, "approve")
    override = ask(
        school["staff"], school["hall"], school["phone"], emergency=True, emergency_reason="Pupil having a seizure, calling 999"
    )
    assert override.status == RequestStatus.APPROVED.value
    assert fresh(in_class).status == RequestStatus.ENDED.value
    committed(
        permissions.grant_standing_permission,
        school["head"],
        person_id=school["staff"].id,
        starts_on=local_today(),
        ends_on=local_today() + timedelta(days=2),
        reason="Medical need",
    )
    standing = ask(school["staff"], school["area"], school["phone"])
    assert standing.status == RequestStatus.APPROVED.value and standing.standing_permission_id is not None
    assert fresh(override).status == RequestStatus.ENDED.value
    db.session.rollback()
    assert [r.id for r in permissions.active_permissions(db.session, utcnow())] == [standing.id]


def test_another_persons_device_in_the_same_area_is_untouched(app, school):
    theirs = make_device(school["other"], model="Galaxy A54")
    mine = ask(school["staff"], school["area"], school["phone"])
    committed(permissions.decide, school["head"], mine.id, "approve")
    other = ask(school["other"], school["area"], theirs)
    committed(permissions.decide, school["head"], other.id, "approve")
    assert fresh(mine).status == RequestStatus.APPROVED.value


# Registering the same phone again ----------------------------------------------------------------------


def test_registering_my_own_phone_again_says_already_registered_and_alerts_nobody(app, school):
    browser = browser_for(app, school["staff"])
    data = {
        **form_fields(browser, "/devices/new"),
        "kind": "smartphone",
        "make": "Apple",
        "model": "iPhone 13",
        "imei1": school["phone"].imei1,
    }
    answer = browser.post("/devices/new", data=data)
    assert answer.status_code == 303 and answer.headers["Location"] == f"/devices/{school['phone'].id}"
    assert "already registered this device" in browser.get(answer.headers["Location"]).get_data(as_text=True)
    assert actions("device.duplicate_imei_refused") == 0
    assert count(Notification, Notification.kind == "device.duplicate_imei") == 0
    assert count(PersonalDevice, PersonalDevice.owner_id == school["staff"].id) == 1


def test_someone_elses_imei_is_still_a_clash_for_the_office(app, school):
    browser = browser_for(app, school["other"])
    data = {
        "csrf_token": csrf_token(browser, "/devices/new"),
        "kind": "smartphone",
        "make": "Apple",
        "model": "iPhone",
        "imei1": school["phone"].imei1,
    }
    assert browser.post("/devices/new", data=data).status_code == 422
    assert actions("device.duplicate_imei_refused") == 1


def test_the_api_answers_registering_my_own_phone_again_with_its_id(app, school):
    browser = browser_for(app, school["staff"])
    answer = browser.post(
        "/api/v1/devices",
        json={"kind": "smartphone", "make": "Apple", "model": "iPhone 13", "imei1": school["phone"].imei1},
        headers={"X-CSRFToken": csrf_token(browser, "/")},
    )
    assert answer.status_code == 409 and answer.mimetype == "application/problem+json"
    assert answer.get_json()["device_id"] == school["phone"].id
    assert count(Notification, Notification.kind == "device.duplicate_imei") == 0
