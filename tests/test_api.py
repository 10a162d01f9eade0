"""The JSON API for what exists so far: me, my data, devices; problem details and CSRF."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, PersonalDevice, Role
from tests.conftest import csrf_token
from tests.factories import make_device, make_imei, make_user, sign_in


def _headers(client):
    return {"X-CSRFToken": csrf_token(client, "/devices")}


def test_me_and_my_data(client):
    user = make_user(Role.APPROVER, name="Mrs A Adeyemi")
    device = make_device(user)
    sign_in(client, user)
    me = client.get("/api/v1/me").get_json()
    assert me["name"] == "Mrs A Adeyemi" and me["roles"] == ["approver", "staff"]
    export = client.get("/api/v1/me/export").get_json()
    assert export["devices"][0]["imei1"] == device.imei1
    assert export["person"]["email"] == user.email
    download = client.get("/my-data/download")
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["Cache-Control"] == "no-store"


def test_register_a_device_and_read_it_back(client):
    user = make_user()
    sign_in(client, user)
    imei = make_imei()
    created = client.post(
        "/api/v1/devices",
        json={"make": "Apple", "model": "iPhone 13", "imei1": f"{imei[:8]} {imei[8:]}"},
        headers=_headers(client),
    )
    assert created.status_code == 201
    body = created.get_json()
    assert body["imei1"] == imei and body["imei1_last4"] == imei[-4:]
    assert client.get(f"/api/v1/devices/{body['id']}").get_json()["model"] == "iPhone 13"
    assert [d["id"] for d in client.get("/api/v1/devices").get_json()["items"]] == [body["id"]]


def test_validation_errors_are_problem_details_with_field_errors(client):
    user = make_user()
    sign_in(client, user)
    # The school's rules name every field at once (here both IMEIs); the body's form is checked first.
    response = client.post(
        "/api/v1/devices", json={"make": "Apple", "model": "X", "imei1": "12345", "imei2": "123"}, headers=_headers(client)
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == 422 and problem["type"].startswith("urn:lanyard:problem:")
    assert set(problem["errors"]) == {"imei1", "imei2"}
    blank = client.post("/api/v1/devices", json={"make": " ", "model": "X", "imei1": "12345"}, headers=_headers(client))
    assert blank.status_code == 422 and blank.get_json()["errors"] == {"make": ["Must not be empty or only spaces."]}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PersonalDevice)) == 0


def test_unknown_fields_and_wrong_types_are_refused(client):
    user = make_user()
    sign_in(client, user)
    unknown = client.post("/api/v1/devices", json={"make": "A", "model": "B", "owner_id": 99}, headers=_headers(client))
    assert unknown.status_code == 422 and "owner_id" in unknown.get_json()["errors"]
    wrong_type = client.post("/api/v1/devices", json={"make": 5, "model": "B"}, headers=_headers(client))
    assert wrong_type.status_code == 422
    not_json = client.post("/api/v1/devices", data="make=A", headers=_headers(client))
    assert not_json.status_code == 422


def test_problem_details_do_not_echo_raw_input(client):
    user = make_user()
    sign_in(client, user)
    payload = "<script>alert(1)</script>"
    response = client.post("/api/v1/devices", json={payload: "x"}, headers=_headers(client))
    assert response.mimetype == "application/problem+json"
    assert "<script>" not in response.get_data(as_text=True)


def test_a_duplicate_imei_answers_without_the_owner_and_is_audited(client):
    owner = make_user(name="Hidden Owner")
    device = make_device(owner)
    other = make_user()
    sign_in(client, other)
    response = client.post("/api/v1/devices", json={"make": "A", "model": "B", "imei1": device.imei1}, headers=_headers(client))
    assert response.status_code == 422
    assert "Hidden Owner" not in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "device.duplicate_imei_refused")) is not None


def test_report_lost_and_found(client):
    user = make_user()
    device = make_device(user)
    sign_in(client, user)
    lost = client.post(
        f"/api/v1/devices/{device.id}/report-lost", json={"stolen": True, "crime_reference": "CR1"}, headers=_headers(client)
    )
    assert lost.status_code == 200 and lost.get_json()["status"] == "stolen"
    again = client.post(f"/api/v1/devices/{device.id}/found", json={}, headers=_headers(client))
    assert again.get_json()["status"] == "active"
    conflict = client.post(f"/api/v1/devices/{device.id}/found", json={}, headers=_headers(client))
    assert conflict.status_code == 409


def test_patch_changes_only_the_owners_device(client):
    owner, other = make_user(), make_user()
    device = make_device(owner)
    sign_in(client, other)
    assert client.patch(f"/api/v1/devices/{device.id}", json={"model": "Hacked"}, headers=_headers(client)).status_code == 404
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/")})
    sign_in(client, owner)
    changed = client.patch(f"/api/v1/devices/{device.id}", json={"model": "iPhone 15"}, headers=_headers(client))
    assert changed.status_code == 200 and changed.get_json()["model"] == "iPhone 15"
    assert changed.get_json()["imei1"] == device.imei1


def test_office_lists_every_device(client):
    make_device(make_user())
    make_device(make_user())
    office = make_user(Role.OFFICE)
    sign_in(client, office)
    assert len(client.get("/api/v1/devices?scope=all").get_json()["items"]) == 2
    assert client.get("/api/v1/devices").get_json()["items"] == []


def test_unknown_api_paths_are_problem_details(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
