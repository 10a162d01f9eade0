"""Who may do what: ownership (no IDOR), roles, sign-in and CSRF (DESIGN.md section 10)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, PasswordToken, PersonalDevice, Role
from app.services import devices
from tests.conftest import csrf_token
from tests.equipment_factories import api_headers
from tests.factories import make_device, make_user, sign_in


@pytest.fixture
def two_teachers(client):
    alice, bob = make_user(name="Alice"), make_user(name="Bob")
    bobs_phone = make_device(bob)
    return alice, bob, bobs_phone


@pytest.mark.parametrize("path", ["/devices/{id}", "/devices/{id}/edit", "/devices/{id}/report-lost", "/devices/{id}/lost"])
def test_staff_cannot_read_another_persons_device(client, two_teachers, path):
    alice, _bob, phone = two_teachers
    sign_in(client, alice)
    assert client.get(path.format(id=phone.id)).status_code == 404


@pytest.mark.parametrize(
    "path", ["/devices/{id}/edit", "/devices/{id}/report-lost", "/devices/{id}/retire", "/devices/{id}/found"]
)
def test_staff_cannot_change_another_persons_device(client, two_teachers, path):
    alice, _bob, phone = two_teachers
    sign_in(client, alice)
    token = csrf_token(client, "/devices")
    response = client.post(
        path.format(id=phone.id),
        data={"csrf_token": token, "make": "X", "model": "Y", "kind": "smartphone", "what_happened": "lost"},
    )
    assert response.status_code == 404
    assert db.session.get(PersonalDevice, phone.id).status == "active"


def _events(subject_type: str, subject_id: int) -> list[str]:
    db.session.rollback()
    query = sa.select(AuditEvent.action).where(AuditEvent.subject_type == subject_type, AuditEvent.subject_id == str(subject_id))
    return list(db.session.scalars(query.order_by(AuditEvent.seq)))


@pytest.mark.parametrize(
    ("action", "body", "status_before"),
    [("retire", {}, "active"), ("report-lost", {"stolen": True, "crime_reference": "CR1"}, "active"), ("found", {}, "lost")],
)
def test_staff_cannot_retire_report_lost_or_find_another_persons_device_through_the_api(
    client, two_teachers, action, body, status_before
):
    """The API's device actions check ownership as the pages do: another person's phone is not there (404)."""
    alice, bob, phone = two_teachers
    if status_before == "lost":
        with write_intent():
            devices.report_lost(db.session, bob, db.session.get(PersonalDevice, phone.id), stolen=False)
            db.session.commit()
    events = _events("personal_device", phone.id)
    sign_in(client, alice)
    response = client.post(f"/api/v1/devices/{phone.id}/{action}", json=body, headers=api_headers(client))
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    db.session.rollback()
    assert db.session.get(PersonalDevice, phone.id).status == status_before
    assert _events("personal_device", phone.id) == events
    # The owner can: the same call is not refused for some other reason.
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/devices")})
    sign_in(client, bob)
    assert client.post(f"/api/v1/devices/{phone.id}/{action}", json=body, headers=api_headers(client)).status_code == 200
    assert len(_events("personal_device", phone.id)) == len(events) + 1


def test_staff_cannot_make_a_password_link_for_someone_else(client):
    """A missing role check on an id route: staff posting to another person's password-link is refused (403)."""
    alice, bob = make_user(name="Alice"), make_user(name="Bob")
    sign_in(client, alice)
    before = _events("user", bob.id)
    response = client.post(f"/admin/staff/{bob.id}/password-link", data={"csrf_token": csrf_token(client, "/devices")})
    assert response.status_code == 403
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PasswordToken).where(PasswordToken.user_id == bob.id)) == 0
    assert _events("user", bob.id) == before
    # An admin's identical post does make one, so the refusal above is the role check.
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/devices")})
    sign_in(client, make_user(Role.ADMIN))
    made = client.post(f"/admin/staff/{bob.id}/password-link", data={"csrf_token": csrf_token(client, f"/admin/staff/{bob.id}")})
    assert made.status_code == 302 and made.headers["Location"].endswith(f"/admin/staff/{bob.id}/link")
    assert "user.password_reset_issued" in _events("user", bob.id)


def test_staff_cannot_see_other_imeis_but_the_office_can(client, two_teachers):
    alice, _bob, phone = two_teachers
    sign_in(client, alice)
    assert client.get("/office/devices").status_code == 403
    assert client.get(f"/office/devices/{phone.id}").status_code == 403
    assert phone.imei1 not in client.get("/devices").get_data(as_text=True)
    assert client.get(f"/api/v1/devices/{phone.id}").status_code == 404
    assert client.get("/api/v1/devices?scope=all").status_code == 403
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/devices")})
    office = make_user(Role.OFFICE)
    sign_in(client, office)
    register = client.get("/office/devices").get_data(as_text=True)
    assert phone.imei1 not in register and phone.imei1[-4:] in register  # masked, with a reveal
    token = csrf_token(client, "/office/devices")
    assert phone.imei1 in client.post(f"/office/devices/{phone.id}/reveal", data={"csrf_token": token}).get_data(as_text=True)
    assert client.get(f"/api/v1/devices/{phone.id}").get_json()["imei1"] == phone.imei1


@pytest.mark.parametrize(
    "path",
    ["/", "/devices", "/devices/new", "/notices", "/my-data", "/my-data/download", "/account", "/admin/staff", "/office/devices"],
)
def test_anonymous_is_sent_to_sign_in_and_back(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in?next=")


def test_anonymous_api_calls_get_a_401_problem(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_a_post_without_csrf_token_is_refused(client):
    teacher = make_user()
    sign_in(client, teacher)
    response = client.post("/devices/new", data={"kind": "smartphone", "make": "A", "model": "B", "imei1": "490154203237518"})
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert db.session.query(PersonalDevice).count() == 0
    api = client.post("/api/v1/devices", json={"make": "A", "model": "B", "imei1": "490154203237518"})
    assert api.status_code == 403
    assert api.mimetype == "application/problem+json"


@pytest.mark.parametrize("path", ["/admin/staff", "/admin/staff/invite"])
def test_only_admins_manage_staff(client, path):
    sign_in(client, make_user(Role.OFFICE, Role.APPROVER))
    assert client.get(path).status_code == 403


def test_every_route_is_either_public_or_requires_sign_in(app):
    """A new route that forgets its access check fails here."""
    client = app.test_client()
    checked = 0
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if rule.endpoint == "static" or getattr(view, "is_public", False):
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<int:{argument}>", "1").replace(f"<{argument}>", "x")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            checked += 1
            if path.startswith(("/api/", "/scim/")):
                assert response.status_code in (401, 403), f"{method} {path} answered {response.status_code} to anonymous"
            elif method == "GET":
                assert response.status_code == 302 and "/sign-in" in response.headers["Location"], f"GET {path}"
            else:
                # Anonymous POSTs fail on CSRF or sign-in before anything happens.
                assert response.status_code in (302, 400, 401, 403), f"{method} {path} answered {response.status_code}"
    assert checked > 20
