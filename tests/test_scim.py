"""SCIM 2.0 provisioning: token auth, Users CRUD/PATCH/filter/paging, Groups as roles, and scim2-tester."""

from __future__ import annotations

import json
import re
from typing import Annotated

import sqlalchemy as sa
from pydantic import Field
from scim2_client.engines.wsgi import WSGISCIMClient
from scim2_models import Group, Required, ResourceType, ScimProvider, Uniqueness
from scim2_models import User as ScimCoreUser
from scim2_tester import Status, check_server

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, Role, StaffType, User, UserSession
from app.scim.resources import LanyardUser
from app.services import provisioning
from tests.factories import make_user, sign_in

SCIM = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LANYARD = "urn:ietf:params:scim:schemas:extension:lanyard:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _token(name: str = "Entra ID") -> str:
    admin = db.session.scalar(sa.select(User).where(User.email == "scim-admin@school.example.org")) or make_user(
        Role.ADMIN, email="scim-admin@school.example.org"
    )
    with write_intent():
        _row, secret = provisioning.create_scim_token(db.session, admin, name)
        db.session.commit()
    return secret


def _headers(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}", "Content-Type": SCIM}


def _new_user(client, headers, email="v.okafor@school.example.org", **extra):
    body = {
        "schemas": [USER_SCHEMA, LANYARD],
        "userName": email,
        "name": {"formatted": "Mrs V Okafor"},
        "emails": [{"value": email, "primary": True}],
        "active": True,
        "externalId": "entra-123",
        "userType": "volunteer",
        LANYARD: {"endDate": "2030-07-31"},
        **extra,
    }
    return client.post("/scim/v2/Users", json=body, headers=headers)


def _actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq)))


def test_every_call_needs_a_live_provisioning_token(client):
    secret = _token()
    assert client.get("/scim/v2/Users").status_code == 401
    refused = client.get("/scim/v2/Users", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert refused.status_code == 401 and refused.mimetype == SCIM
    body = refused.get_json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == "401"
    # A personal API token or a signed-in cookie is not a provisioning token.
    assert client.get("/scim/v2/Users", headers={"Authorization": "Bearer lny_personal"}).status_code == 401
    sign_in(client, make_user(Role.ADMIN))
    assert client.get("/scim/v2/Users").status_code == 401
    assert client.post("/scim/v2/Users", json={}).status_code == 401
    ok = client.get("/scim/v2/Users", headers=_headers(secret))
    assert ok.status_code == 200, ok.get_data(as_text=True)


def test_a_revoked_token_stops_working(client):
    secret = _token()
    admin = db.session.scalar(sa.select(User).where(User.email == "scim-admin@school.example.org"))
    token = provisioning.scim_token_for(db.session, secret)
    with write_intent():
        provisioning.revoke_scim_token(db.session, admin, token.id)
        db.session.commit()
    assert client.get("/scim/v2/Users", headers=_headers(secret)).status_code == 401
    assert {"scim_token.created", "scim_token.revoked"} <= set(_actions())


def test_create_read_and_filter_a_user(client):
    headers = _headers(_token())
    created = _new_user(client, headers)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.mimetype == SCIM
    body = created.get_json()
    assert body["userName"] == "v.okafor@school.example.org" and body["displayName"] == "Mrs V Okafor"
    assert body["userType"] == "volunteer" and body[LANYARD]["endDate"] == "2030-07-31"
    assert body["externalId"] == "entra-123" and body["active"] is True
    assert created.headers["Location"] == f"https://lanyard.test/scim/v2/Users/{body['id']}"
    person = db.session.get(User, int(body["id"]))
    assert person.staff_type == "volunteer" and person.end_date.isoformat() == "2030-07-31"
    assert client.get(f"/scim/v2/Users/{body['id']}", headers=headers).get_json()["userName"] == "v.okafor@school.example.org"
    found = client.get('/scim/v2/Users?filter=userName eq "V.Okafor@school.example.org"', headers=headers).get_json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == body["id"]
    none = client.get('/scim/v2/Users?filter=userName eq "nobody@school.example.org"', headers=headers).get_json()
    assert none["totalResults"] == 0 and none["Resources"] == []
    by_external = client.get('/scim/v2/Users?filter=externalId eq "entra-123"', headers=headers).get_json()
    assert by_external["totalResults"] == 1
    bad = client.get('/scim/v2/Users?filter=title co "x"', headers=headers)
    assert bad.status_code == 400 and bad.get_json()["scimType"] == "invalidFilter"
    again = _new_user(client, headers)
    assert again.status_code == 409 and again.get_json()["scimType"] == "uniqueness"
    actions = _actions()
    assert "user.created" in actions and "scim.user_created" in actions
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "scim.user_created"))
    details = json.loads(event.details)
    assert event.actor_id is None and details["via"] == "scim" and details["scim_token"]


def test_paging_with_start_index_and_count(client):
    headers = _headers(_token())
    for n in range(4):
        assert _new_user(client, headers, email=f"page{n}@school.example.org").status_code == 201
    total = client.get("/scim/v2/Users?count=0", headers=headers).get_json()
    assert total["Resources"] == [] and total["totalResults"] >= 5
    first = client.get("/scim/v2/Users?startIndex=1&count=2", headers=headers).get_json()
    second = client.get("/scim/v2/Users?startIndex=3&count=2", headers=headers).get_json()
    assert first["itemsPerPage"] == 2 and second["startIndex"] == 3
    assert {r["id"] for r in first["Resources"]}.isdisjoint({r["id"] for r in second["Resources"]})


def test_bad_payloads_are_scim_errors(client):
    headers = _headers(_token())
    missing = client.post("/scim/v2/Users", json={"schemas": [USER_SCHEMA], "displayName": "Nobody"}, headers=headers)
    assert missing.status_code == 400 and missing.mimetype == SCIM
    no_address = client.post("/scim/v2/Users", json={"schemas": [USER_SCHEMA], "userName": "just-a-name"}, headers=headers)
    assert no_address.status_code == 400 and "email" in no_address.get_json()["detail"]
    wrong_type = _new_user(client, headers, email="t@school.example.org", userType="astronaut")
    assert wrong_type.status_code == 400 and wrong_type.get_json()["scimType"] == "invalidValue"
    not_json = client.post("/scim/v2/Users", data="nope", headers=headers)
    assert not_json.status_code == 400
    assert client.get("/scim/v2/Users/999999", headers=headers).status_code == 404
    assert client.get("/scim/v2/Nothing", headers=headers).get_json()["status"] == "404"


def test_patch_active_false_runs_the_leaver_flow_and_true_reactivates(client, app):
    headers = _headers(_token())
    person = make_user(name="Mr J Leaver")
    other = app.test_client()
    sign_in(other, person)
    off = {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}
    answer = client.patch(f"/scim/v2/Users/{person.id}", json=off, headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["active"] is False
    db.session.expire_all()
    assert db.session.get(User, person.id).is_active_account is False
    assert (
        db.session.scalar(sa.select(sa.func.count()).where(UserSession.user_id == person.id, UserSession.ended_at.is_(None))) == 0
    )
    assert other.get("/").status_code == 302  # signed out everywhere
    on = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": True, "displayName": "Mr J Returner"}}]}
    back = client.patch(f"/scim/v2/Users/{person.id}", json=on, headers=headers).get_json()
    assert back["active"] is True and back["displayName"] == "Mr J Returner"
    actions = _actions()
    assert {"user.deactivated", "user.reactivated", "scim.user_changed"} <= set(actions)


def test_patch_add_and_remove_the_end_date_and_staff_type(client):
    headers = _headers(_token())
    person = make_user()
    add = {
        "schemas": [PATCH],
        "Operations": [
            {"op": "add", "path": f"{LANYARD}:endDate", "value": "2031-03-31"},
            {"op": "replace", "path": "userType", "value": "supply"},
        ],
    }
    body = client.patch(f"/scim/v2/Users/{person.id}", json=add, headers=headers).get_json()
    assert body[LANYARD]["endDate"] == "2031-03-31" and body["userType"] == "supply"
    remove = {"schemas": [PATCH], "Operations": [{"op": "remove", "path": f"{LANYARD}:endDate"}]}
    body = client.patch(f"/scim/v2/Users/{person.id}", json=remove, headers=headers).get_json()
    assert not body.get(LANYARD, {}).get("endDate")
    db.session.expire_all()
    assert db.session.get(User, person.id).end_date is None


def test_put_replaces_and_delete_deactivates_without_deleting(client):
    headers = _headers(_token())
    body = _new_user(client, headers).get_json()
    replaced = client.put(
        f"/scim/v2/Users/{body['id']}",
        json={"schemas": [USER_SCHEMA], "userName": "v.okafor2@school.example.org", "displayName": "Dr V Okafor", "active": True},
        headers=headers,
    ).get_json()
    assert replaced["userName"] == "v.okafor2@school.example.org" and replaced["userType"] == "employee"
    assert not replaced.get(LANYARD, {}).get("endDate")
    assert client.delete(f"/scim/v2/Users/{body['id']}", headers=headers).status_code == 204
    assert client.get(f"/scim/v2/Users/{body['id']}", headers=headers).status_code == 404
    db.session.expire_all()
    kept = db.session.get(User, int(body["id"]))
    assert kept is not None and kept.is_active_account is False
    # Sent again later, the same account comes back.
    restored = _new_user(client, headers, email="v.okafor2@school.example.org")
    assert restored.status_code == 201 and restored.get_json()["id"] == body["id"]
    assert restored.get_json()["active"] is True


def test_groups_are_the_roles_and_patch_members_changes_roles(client):
    headers = _headers(_token())
    person = make_user()
    listed = client.get("/scim/v2/Groups", headers=headers).get_json()
    assert [g["displayName"] for g in listed["Resources"]] == ["Staff", "Approvers", "Office", "Admins", "Governors"]
    found = client.get('/scim/v2/Groups?filter=displayName eq "Approvers"', headers=headers).get_json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == "approver"
    add = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": str(person.id)}]}]}
    assert client.patch("/scim/v2/Groups/approver", json=add, headers=headers).status_code in (200, 204)
    db.session.expire_all()
    assert Role.APPROVER in db.session.get(User, person.id).roles
    group = client.get("/scim/v2/Groups/approver", headers=headers).get_json()
    assert str(person.id) in {m["value"] for m in group["members"]}
    assert "members" not in client.get("/scim/v2/Groups/approver?excludedAttributes=members", headers=headers).get_json()
    remove = {"schemas": [PATCH], "Operations": [{"op": "remove", "path": f'members[value eq "{person.id}"]'}]}
    assert client.patch("/scim/v2/Groups/approver", json=remove, headers=headers).status_code in (200, 204)
    db.session.expire_all()
    assert Role.APPROVER not in db.session.get(User, person.id).roles
    assert {"user.roles_changed", "scim.group_member_added", "scim.group_member_removed"} <= set(_actions())
    made = client.post(
        "/scim/v2/Groups",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Year 3"},
        headers=headers,
    )
    assert made.status_code == 403 and "five roles" in made.get_json()["detail"]
    assert client.delete("/scim/v2/Groups/admin", headers=headers).status_code == 403


def test_the_last_admin_cannot_be_deprovisioned(client):
    headers = _headers(_token())
    admin = db.session.scalar(sa.select(User).where(User.email == "scim-admin@school.example.org"))
    off = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    refused = client.patch(f"/scim/v2/Users/{admin.id}", json=off, headers=headers)
    assert refused.status_code == 409
    remove = {"schemas": [PATCH], "Operations": [{"op": "remove", "path": f'members[value eq "{admin.id}"]'}]}
    assert client.patch("/scim/v2/Groups/admin", json=remove, headers=headers).status_code == 409


def test_discovery_endpoints(client):
    headers = _headers(_token())
    config = client.get("/scim/v2/ServiceProviderConfig", headers=headers).get_json()
    assert config["patch"]["supported"] is True and config["bulk"]["supported"] is False
    types = client.get("/scim/v2/ResourceTypes", headers=headers).get_json()
    assert {t["name"] for t in types["Resources"]} == {"User", "Group"}
    schemas = client.get("/scim/v2/Schemas", headers=headers).get_json()
    assert LANYARD in {s["id"] for s in schemas["Resources"]}


class _LanyardUserForTester(ScimCoreUser):
    """The User as Lanyard restricts it, told to the checker so its random values fit: userName is an email
    address and userType one of the staff types (both published in /Schemas too, but the checker reads
    a known schema id as the standard model, without the canonical values)."""

    user_name: Annotated[str | None, Required.true, Uniqueness.server] = Field(
        None, examples=[f"tester-{n}@school.example.org" for n in range(10_000)]
    )
    user_type: str | None = Field(None, examples=[t.value for t in StaffType])


def test_scim2_tester_reports_no_failures(app):
    """The SCIM compliance checker, against the app in process: discovery, and Users CRUD, PATCH and queries."""
    secret = _token()
    scim = WSGISCIMClient(
        app,
        base_url="https://lanyard.test/scim/v2",
        headers={"Authorization": f"Bearer {secret}"},
        provider=ScimProvider(
            models=[_LanyardUserForTester, LanyardUser, Group],
            resource_types=[ResourceType.from_resource(_LanyardUserForTester[LanyardUser]), ResourceType.from_resource(Group)],
        ),
    )
    results = check_server(scim, resource_types=["User"])
    failures = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    # The only checks that fail are the attribute-by-attribute PATCH ones for attributes Lanyard does not
    # keep as sent: it stores one name (displayName and name.formatted are the same), one address (emails
    # mirror userName), and none of the rest; removing active or userType leaves the account's own value.
    not_kept = {
        "name",
        "displayName",
        "nickName",
        "profileUrl",
        "title",
        "preferredLanguage",
        "locale",
        "timezone",
        "emails",
        "phoneNumbers",
        "ims",
        "photos",
        "addresses",
        "entitlements",
        "roles",
        "x509Certificates",
        "userType",
        "active",
    }
    unexpected = [
        f"{r.title}: {r.reason}"
        for r in failures
        if r.title not in ("check_add_attribute", "check_replace_attribute", "check_remove_attribute")
        or re.search(r"'([A-Za-z0-9]+)'", r.reason or "").group(1) not in not_kept
    ]
    assert unexpected == []
    passed = {r.title for r in results if r.status == Status.SUCCESS}
    assert {
        "object_creation",
        "object_query",
        "object_replacement",
        "object_deletion",
        "object_query_with_attributes",
        "search_with_attributes",
    } <= passed
