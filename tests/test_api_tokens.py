"""Personal API tokens: shown once, stored hashed, act with the person's roles, revocable, use audited."""

from __future__ import annotations

import re

import sqlalchemy as sa

from app.extensions import db
from app.models import ApiToken, AuditEvent, Role
from tests.conftest import csrf_token
from tests.factories import make_device, make_user, sign_in


def _create(client, name="MIS sync") -> str:
    page = client.post("/account/tokens", data={"name": name, "csrf_token": csrf_token(client, "/account/tokens")}).get_data(as_text=True)
    return re.search(r'value="(lny_[^"]+)"', page).group(1)


def test_a_token_is_shown_once_and_stored_as_a_hash(client):
    sign_in(client, make_user())
    secret = _create(client)
    stored = db.session.scalar(sa.select(ApiToken))
    assert stored.token_hash != secret and secret not in stored.token_hash
    assert secret not in client.get("/account/tokens").get_data(as_text=True)
    assert stored.prefix in client.get("/account/tokens").get_data(as_text=True)


def test_a_token_acts_with_the_persons_roles_without_csrf(app, client):
    office = make_user(Role.OFFICE)
    sign_in(client, office)
    secret = _create(client)
    make_device(make_user())
    script = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    assert script.get("/api/v1/me", headers=headers).get_json()["email"] == office.email
    assert len(script.get("/api/v1/devices?scope=all", headers=headers).get_json()["items"]) == 1
    created = script.post("/api/v1/devices", json={"kind": "camera", "make": "Canon", "model": "G7"}, headers=headers)
    assert created.status_code == 201


def test_a_token_works_only_on_the_api(app, client):
    user = make_user()
    sign_in(client, user)
    secret = _create(client)
    page = app.test_client().get("/devices", headers={"Authorization": f"Bearer {secret}"})
    assert page.status_code == 302


def test_revoked_wrong_and_leavers_tokens_are_refused(app, client):
    admin, user = make_user(Role.ADMIN), make_user()
    sign_in(client, user)
    secret = _create(client)
    script = app.test_client()
    assert script.get("/api/v1/me", headers={"Authorization": "Bearer lny_not-a-real-token"}).status_code == 401
    token = db.session.scalar(sa.select(ApiToken))
    client.post(f"/account/tokens/{token.id}/revoke", data={"csrf_token": csrf_token(client, "/account/tokens")})
    assert script.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401

    second = _create(client, "second")
    admin_client = app.test_client()
    sign_in(admin_client, admin)
    admin_client.post(f"/admin/staff/{user.id}/deactivate", data={"csrf_token": csrf_token(admin_client, "/admin/staff")})
    assert script.get("/api/v1/me", headers={"Authorization": f"Bearer {second}"}).status_code == 401


def test_nobody_revokes_another_persons_token(app, client):
    owner = make_user()
    sign_in(client, owner)
    _create(client)
    token = db.session.scalar(sa.select(ApiToken))
    other = app.test_client()
    sign_in(other, make_user())
    response = other.post(f"/account/tokens/{token.id}/revoke", data={"csrf_token": csrf_token(other, "/account/tokens")})
    assert response.status_code == 404
    assert db.session.get(ApiToken, token.id).revoked_at is None


def test_use_is_audited_at_most_hourly(app, client, frozen_clock):
    sign_in(client, make_user())
    secret = _create(client)
    script = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    for _ in range(3):
        script.get("/api/v1/me", headers=headers)
    frozen_clock.advance(hours=1)
    script.get("/api/v1/me", headers=headers)
    uses = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == "api_token.used"))
    assert uses == 2
