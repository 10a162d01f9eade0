"""J1 through the Flask test client: the register's pages, rules and messages."""

from __future__ import annotations

import re

import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, DeviceStatus, Notification, PersonalDevice, Role
from tests.conftest import csrf_token
from tests.factories import make_device, make_imei, make_user, sign_in


def _post(client, path, data):
    token = csrf_token(client, "/devices")
    return client.post(path, data={**data, "csrf_token": token})


def test_adding_a_phone_lists_it_masked(client):
    teacher = make_user()
    sign_in(client, teacher)
    imei = make_imei()
    response = _post(client, "/devices/new", {"kind": "smartphone", "make": "Apple", "model": "iPhone 13", "imei1": imei})
    assert response.status_code == 302
    page = client.get("/devices").get_data(as_text=True)
    assert "•" * 11 + imei[-4:] in page
    assert "Show IMEI" in page


def test_a_dual_sim_phone_keeps_both_imeis(client):
    teacher = make_user()
    sign_in(client, teacher)
    first, second = make_imei(), make_imei()
    _post(client, "/devices/new", {"kind": "smartphone", "make": "Samsung", "model": "S23", "imei1": first, "imei2": second})
    device = db.session.scalar(sa.select(PersonalDevice))
    assert (device.imei1, device.imei2) == (first, second)


def test_a_wrong_imei_keeps_what_was_typed_and_says_what_is_wrong(client):
    teacher = make_user()
    sign_in(client, teacher)
    response = _post(
        client, "/devices/new", {"kind": "smartphone", "make": "Apple", "model": "iPhone 13", "imei1": "35-209900-176148-2"}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "last digit does not match" in page
    assert 'value="35-209900-176148-2"' in page
    assert 'value="Apple"' in page
    assert "*#06#" in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PersonalDevice)) == 0


def test_a_smartphone_needs_an_imei_but_a_camera_does_not(client):
    teacher = make_user()
    sign_in(client, teacher)
    response = _post(client, "/devices/new", {"kind": "smartphone", "make": "Apple", "model": "iPhone 13", "imei1": ""})
    assert "Enter the IMEI" in response.get_data(as_text=True)
    response = _post(client, "/devices/new", {"kind": "camera", "make": "Canon", "model": "G7 X", "imei1": ""})
    assert response.status_code == 302


def test_a_duplicate_imei_is_refused_without_naming_its_owner_audited_and_the_office_told(client):
    owner = make_user(name="Mrs Secret Owner")
    office = make_user(Role.OFFICE)
    imei = make_imei()
    make_device(owner, imei1=imei)
    other = make_user(name="Mr Second Person")
    sign_in(client, other)
    response = _post(client, "/devices/new", {"kind": "smartphone", "make": "Apple", "model": "iPhone", "imei1": imei})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "already registered" in page
    assert "Secret Owner" not in page
    attempt = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "device.duplicate_imei_refused"))
    assert attempt is not None and attempt.actor_id == other.id
    assert imei not in attempt.details
    notices = db.session.scalars(sa.select(Notification).where(Notification.user_id == office.id)).all()
    assert any("already in the register" in n.title for n in notices)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PersonalDevice)) == 1


def test_an_imei_typed_twice_in_one_device_is_refused(client):
    teacher = make_user()
    sign_in(client, teacher)
    imei = make_imei()
    response = _post(client, "/devices/new", {"kind": "smartphone", "make": "A", "model": "B", "imei1": imei, "imei2": imei})
    assert "two different IMEIs" in response.get_data(as_text=True)


def test_editing_changes_details_and_audits_the_fields(client):
    teacher = make_user()
    device = make_device(teacher)
    sign_in(client, teacher)
    new_imei = make_imei()
    response = _post(
        client, f"/devices/{device.id}/edit", {"kind": "smartphone", "make": "Apple", "model": "iPhone 14", "imei1": new_imei}
    )
    assert response.status_code == 302
    db.session.expire_all()
    device = db.session.get(PersonalDevice, device.id)
    assert device.model == "iPhone 14" and device.imei1 == new_imei
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "device.updated"))
    assert "imei1" in event.details and "model" in event.details


def test_reporting_lost_shows_the_full_imei_and_next_steps_and_tells_the_office(client):
    teacher = make_user(name="Mr B Clarke")
    office = make_user(Role.OFFICE)
    device = make_device(teacher)
    imei = device.imei1
    sign_in(client, teacher)
    response = _post(client, f"/devices/{device.id}/report-lost", {"what_happened": "stolen", "crime_reference": "CR/1/26"})
    assert response.status_code == 302
    page = client.get(f"/devices/{device.id}/lost").get_data(as_text=True)
    assert imei in page
    assert "block the IMEI" in page and "101" in page and "CR/1/26" in page
    assert db.session.get(PersonalDevice, device.id).status == DeviceStatus.STOLEN.value
    notice = db.session.scalar(sa.select(Notification).where(Notification.user_id == office.id))
    assert "reported" in notice.title and imei not in notice.body and imei[-4:] in notice.body


def test_found_and_retire(client):
    teacher = make_user()
    device = make_device(teacher)
    sign_in(client, teacher)
    _post(client, f"/devices/{device.id}/report-lost", {"what_happened": "lost"})
    _post(client, f"/devices/{device.id}/found", {})
    assert db.session.get(PersonalDevice, device.id).status == "active"
    _post(client, f"/devices/{device.id}/retire", {})
    db.session.expire_all()
    assert db.session.get(PersonalDevice, device.id).status == "retired"
    page = client.get("/devices").get_data(as_text=True)
    assert 'aria-label="Registered devices"' not in page
    assert "Retired devices (1)" in page
    actions = set(db.session.scalars(sa.select(AuditEvent.action)))
    assert {"device.reported_lost", "device.found", "device.retired"} <= actions


def test_office_finds_a_device_by_imei_or_name_and_sees_the_full_imei(client):
    teacher = make_user(name="Miss C Davies")
    office = make_user(Role.OFFICE)
    device = make_device(teacher, model="Galaxy A54")
    make_device(make_user(name="Someone Else"), model="Pixel 8")
    sign_in(client, office)
    by_imei = client.get(f"/office/devices?q={device.imei1[-6:]}").get_data(as_text=True)
    assert "Galaxy A54" in by_imei and "Pixel 8" not in by_imei
    assert device.imei1 not in by_imei and device.imei1[-4:] in by_imei  # masked: a reveal is a recorded POST
    by_name = client.get("/office/devices?q=davies").get_data(as_text=True)
    assert "Galaxy A54" in by_name and "Pixel 8" not in by_name
    assert client.get(f"/office/devices/{device.id}").status_code == 200


def test_the_register_says_when_it_shows_only_the_first_page(client, monkeypatch):
    from app.services import devices as devices_service

    monkeypatch.setattr(devices_service, "REGISTER_PAGE", 2)
    owner = make_user(name="Mr B Clarke")
    for model in ("Pixel 8", "Galaxy A54"):
        make_device(owner, model=model)
    sign_in(client, make_user(Role.OFFICE))
    assert "Showing the first 2 devices" not in client.get("/office/devices?q=pixel").get_data(as_text=True)
    make_device(owner, model="iPhone 13")
    page = client.get("/office/devices").get_data(as_text=True)
    assert "Showing the first 2 devices" in page
    assert len(set(re.findall(r'href="/office/devices/(\d+)"', page))) == 2


def test_a_duplicate_that_slips_past_the_check_is_a_conflict_not_an_error(app, monkeypatch):
    """Two people registering one IMEI at the same moment: the database's key decides, cleanly."""
    from app.database import write_intent
    from app.services import devices as device_service
    from app.services.errors import Conflict

    first, second = make_user(), make_user()
    imei = make_imei()
    make_device(first, imei1=imei)
    monkeypatch.setattr(device_service, "_imeis_taken", lambda *args, **kwargs: [])
    with write_intent():
        try:
            device_service.register_device(
                db.session, second, device_service.DeviceDetails(kind="smartphone", make="A", model="B", imei1=imei)
            )
            raised = None
        except Conflict as error:
            raised = error
        db.session.rollback()
    assert raised is not None and "already registered" in raised.message
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PersonalDevice)) == 1
