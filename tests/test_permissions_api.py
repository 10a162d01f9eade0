"""The permission API: areas, permission-requests (+ decision, end, withdraw), standing-permissions, now."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.api.openapi import openapi_document
from app.extensions import db
from app.models import PermissionRequest, Role
from tests.conftest import csrf_token
from tests.factories import make_device, make_user, sign_in
from tests.permission_factories import Browser, ask, fresh, make_area


class Api:
    """A signed-in person's JSON calls, with the CSRF header a page would send."""

    def __init__(self, app, user) -> None:
        self.browser = Browser(app)
        sign_in(self.browser, user)
        self.token = csrf_token(self.browser, "/")

    def get(self, path: str):
        return self.browser.get(f"/api/v1{path}")

    def post(self, path: str, body: dict | None = None):
        return self.browser.post(f"/api/v1{path}", json=body or {}, headers={"X-CSRFToken": self.token})

    def patch(self, path: str, body: dict):
        return self.browser.patch(f"/api/v1{path}", json=body, headers={"X-CSRFToken": self.token})


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
    people["area"] = make_area(people["admin"], "Year 3 classroom")
    return people


def test_ask_read_and_see_the_decision(app, school):
    staff = Api(app, school["staff"])
    created = staff.post(
        "/permission-requests",
        {
            "area_id": school["area"].id,
            "device": f"personal-{school['phone'].id}",
            "reason": "urgent_call",
            "duration": "until",
            "until": "14:20",
        },
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["status"] == "pending" and body["status_text"].startswith("Waiting for a decision")
    assert body["device"] == {"label": "Apple iPhone 13", "personal_device_id": school["phone"].id, "asset_id": None}
    head = Api(app, school["head"])
    assert [r["id"] for r in head.get("/permission-requests?scope=pending").get_json()["items"]] == [body["id"]]
    decided = head.post(f"/permission-requests/{body['id']}/decision", {"decision": "approve", "note": "Fine", "until": "12:00"})
    assert decided.status_code == 200
    mine = staff.get(f"/permission-requests/{body['id']}").get_json()
    assert mine["status"] == "approved"
    assert mine["status_text"] == "Approved until 12:00 by Mrs A Adeyemi"
    assert mine["decision_note"] == "Fine"
    assert mine["decided_by"]["name"] == "Mrs A Adeyemi"
    assert [r["id"] for r in staff.get("/permission-requests").get_json()["items"]] == [body["id"]]
    ended = staff.post(f"/permission-requests/{body['id']}/end")
    assert ended.status_code == 200 and ended.get_json()["status"] == "ended"


def test_staff_cannot_read_others_requests_decide_or_see_now(app, school):
    asked = ask(school["staff"], school["area"], school["phone"])
    other = Api(app, school["other"])
    assert other.get(f"/permission-requests/{asked.id}").status_code == 404
    assert other.post(f"/permission-requests/{asked.id}/withdraw").status_code == 404
    assert other.post(f"/permission-requests/{asked.id}/end").status_code == 404
    refused = other.post(f"/permission-requests/{asked.id}/decision", {"decision": "approve"})
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    assert other.get("/now").status_code == 403
    assert other.get("/permission-requests?scope=pending").status_code == 403
    assert other.get("/permission-requests").get_json()["items"] == []
    assert fresh(asked).status == "pending"


def test_the_requester_cannot_decide_their_own_request(app, school):
    head_phone = make_device(school["head"], model="iPhone 15")
    asked = ask(school["head"], school["area"], head_phone)
    refused = Api(app, school["head"]).post(f"/permission-requests/{asked.id}/decision", {"decision": "approve"})
    assert refused.status_code == 403
    assert "your own request" in refused.get_json()["detail"]


def test_the_second_decision_is_409_naming_who_decided(app, school):
    asked = ask(school["staff"], school["area"], school["phone"])
    assert (
        Api(app, school["head"])
        .post(f"/permission-requests/{asked.id}/decision", {"decision": "deny", "note": "Not today"})
        .status_code
        == 200
    )
    late = Api(app, school["deputy"]).post(f"/permission-requests/{asked.id}/decision", {"decision": "approve"})
    assert late.status_code == 409
    assert late.get_json() == {
        "type": "urn:lanyard:problem:conflict",
        "title": "Already changed",
        "status": 409,
        "detail": "Mrs A Adeyemi already denied this at 09:00.",
    }


def test_bad_bodies_are_problem_details_per_field(app, school):
    staff = Api(app, school["staff"])
    response = staff.post(
        "/permission-requests", {"area_id": school["area"].id, "device": "personal-999", "reason": "other", "duration": "until"}
    )
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert set(errors) == {"device", "reason_other", "until"}
    outside = staff.post(
        "/permission-requests", {"area_id": school["area"].id, "device": "phone", "reason": "boredom", "duration": "until"}
    )
    assert outside.status_code == 422 and set(outside.get_json()["errors"]) == {"device", "reason"}
    unknown = staff.post("/permission-requests", {"area_id": school["area"].id, "colour": "red"})
    assert unknown.status_code == 422 and "colour" in unknown.get_json()["errors"]
    asked = ask(school["staff"], school["area"], school["phone"])
    wrong = Api(app, school["head"]).post(f"/permission-requests/{asked.id}/decision", {"decision": "maybe"})
    assert wrong.status_code == 422 and "decision" in wrong.get_json()["errors"]


def test_closed_area_is_refused_with_the_reason(app, school):
    closed = make_area(school["admin"], "Changing area", "closed")
    response = Api(app, school["staff"]).post(
        "/permission-requests",
        {"area_id": closed.id, "device": f"personal-{school['phone'].id}", "reason": "medical", "duration": "one_hour"},
    )
    assert response.status_code == 422
    assert "closed to phones and recording devices" in response.get_json()["detail"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PermissionRequest)) == 0


def test_withdraw_through_the_api(app, school):
    asked = ask(school["staff"], school["area"], school["phone"])
    staff = Api(app, school["staff"])
    assert staff.post(f"/permission-requests/{asked.id}/withdraw").get_json()["status"] == "withdrawn"
    again = staff.post(f"/permission-requests/{asked.id}/withdraw")
    assert again.status_code == 409


def test_areas_admin_only_changes_and_poster_urls(app, school):
    staff, admin = Api(app, school["staff"]), Api(app, school["admin"])
    listed = staff.get("/areas").get_json()["items"]
    assert listed == [
        {"id": school["area"].id, "name": "Year 3 classroom", "rule": "ask", "rule_explanation": listed[0]["rule_explanation"]}
    ]
    assert staff.post("/areas", {"name": "Hall"}).status_code == 403
    created = admin.post("/areas", {"name": "Hall", "rule": "ask"})
    assert created.status_code == 201
    hall = created.get_json()
    assert hall["poster_url"].startswith("https://lanyard.test/a/")
    renamed = admin.patch(f"/areas/{hall['id']}", {"rule": "school-devices-only"})
    assert renamed.get_json()["rule"] == "school-devices-only"
    rotated = admin.post(f"/areas/{hall['id']}/rotate-poster").get_json()
    assert rotated["poster_url"] != hall["poster_url"]


def test_standing_permissions_and_now(app, school):
    head, staff, office = Api(app, school["head"]), Api(app, school["staff"]), Api(app, school["office"])
    granted = head.post(
        "/standing-permissions",
        {
            "person_id": school["staff"].id,
            "area_ids": [school["area"].id],
            "starts_on": "2026-11-25",
            "ends_on": "2026-11-30",
            "reason": "Medical need",
        },
    )
    assert granted.status_code == 201, granted.get_json()
    assert staff.post("/standing-permissions", {"person_id": school["other"].id}).status_code == 403
    assert [s["id"] for s in staff.get("/standing-permissions").get_json()["items"]] == [granted.get_json()["id"]]
    asked = staff.post(
        "/permission-requests",
        {"area_id": school["area"].id, "device": f"personal-{school['phone'].id}", "reason": "medical", "duration": "one_hour"},
    ).get_json()
    assert asked["status"] == "approved" and asked["standing_permission_id"] == granted.get_json()["id"]
    board = office.get("/now").get_json()
    assert [item["id"] for item in board["items"]] == [asked["id"]]
    ended = head.post(f"/standing-permissions/{granted.get_json()['id']}/end")
    assert ended.status_code == 200 and ended.get_json()["ended_at"]
    assert head.post(f"/standing-permissions/{granted.get_json()['id']}/end").status_code == 409


def test_every_permission_route_is_described_in_openapi(app):
    paths = openapi_document()["paths"]
    for path, methods in {
        "/areas": {"get", "post"},
        "/areas/{area_id}": {"patch"},
        "/areas/{area_id}/rotate-poster": {"post"},
        "/permission-requests": {"get", "post"},
        "/permission-requests/{request_id}": {"get"},
        "/permission-requests/{request_id}/decision": {"post"},
        "/permission-requests/{request_id}/end": {"post"},
        "/permission-requests/{request_id}/withdraw": {"post"},
        "/standing-permissions": {"get", "post"},
        "/standing-permissions/{standing_id}/end": {"post"},
        "/now": {"get"},
    }.items():
        assert methods <= set(paths[path]), path
    described = {
        (rule.rule.removeprefix("/api/v1").replace("<int:", "{").replace(">", "}"), method.lower())
        for rule in app.url_map.iter_rules()
        if app.view_functions[rule.endpoint].__module__ == "app.api.permissions"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    for path, method in described:
        assert method in paths.get(path, {}), f"{method} {path} is not in the OpenAPI description"
