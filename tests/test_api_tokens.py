"""Personal API tokens: shown once, stored hashed, act with the person's roles, revocable, use audited."""

from __future__ import annotations

import re

import sqlalchemy as sa

from app.extensions import db
from app.models import ApiToken, AuditEvent, PersonalDevice, Role
from tests.conftest import csrf_token
from tests.factories import make_device, make_user, sign_in


def _create(client, name="MIS sync") -> str:
    page = client.post("/account/tokens", data={"name": name, "csrf_token": csrf_token(client, "/account/tokens")}).get_data(
        as_text=True
    )
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
    client.post(
        f"/account/tokens/{token.id}/revoke", data={"csrf_token": csrf_token(client, "/account/tokens"), "confirmed": "yes"}
    )
    assert script.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401

    second = _create(client, "second")
    admin_client = app.test_client()
    sign_in(admin_client, admin)
    admin_client.post(
        f"/admin/staff/{user.id}/deactivate", data={"csrf_token": csrf_token(admin_client, "/admin/staff"), "confirmed": "yes"}
    )
    assert script.get("/api/v1/me", headers={"Authorization": f"Bearer {second}"}).status_code == 401


def test_nobody_revokes_another_persons_token(app, client):
    owner = make_user()
    sign_in(client, owner)
    _create(client)
    token = db.session.scalar(sa.select(ApiToken))
    other = app.test_client()
    sign_in(other, make_user())
    response = other.post(
        f"/account/tokens/{token.id}/revoke", data={"csrf_token": csrf_token(other, "/account/tokens"), "confirmed": "yes"}
    )
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


# Old tokens die with a reactivation or a password reset


def _admin_does(app, admin, path: str) -> None:
    browser = app.test_client()
    sign_in(browser, admin)
    response = browser.post(path, data={"csrf_token": csrf_token(browser, "/admin/staff"), "confirmed": "yes"})
    assert response.status_code in (200, 302)


def _revocations(token_id: int) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "api_token.revoked", AuditEvent.subject_id == str(token_id))
        )
    )


def test_reactivating_a_person_revokes_their_api_tokens(app, client):
    admin, user = make_user(Role.ADMIN), make_user()
    sign_in(client, user)
    secret = _create(client)
    token = db.session.scalar(sa.select(ApiToken))
    _admin_does(app, admin, f"/admin/staff/{user.id}/deactivate")
    _admin_does(app, admin, f"/admin/staff/{user.id}/reactivate")
    assert db.session.get(ApiToken, token.id).revoked_at is not None
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    (event,) = _revocations(token.id)
    assert event.actor_id == admin.id and '"reason":"reactivated"' in event.details


def test_an_admin_password_reset_revokes_the_persons_api_tokens(app, client):
    admin, user = make_user(Role.ADMIN), make_user()
    sign_in(client, user)
    secrets = [_create(client, "MIS sync"), _create(client, "Laptop script")]
    _admin_does(app, admin, f"/admin/staff/{user.id}/password-link")
    script = app.test_client()
    for secret in secrets:
        assert script.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert db.session.scalar(sa.select(sa.func.count()).where(ApiToken.revoked_at.is_(None))) == 0
    reset = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "user.password_reset_issued"))
    revoked = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "api_token.revoked")).all()
    assert len(revoked) == 2 and all(e.seq < reset.seq and '"reason":"password_reset"' in e.details for e in revoked)


# A bad Authorization header on the API is a 401: never the cookie's person, never a skipped CSRF check


def _dead_tokens(app, client, user, admin) -> dict[str, str]:
    """Headers that must all be refused, while ``client`` holds ``user``'s live cookie session."""
    revoked = _create(client, "revoked")
    token = db.session.scalar(sa.select(ApiToken).where(ApiToken.name == "revoked"))
    client.post(
        f"/account/tokens/{token.id}/revoke", data={"csrf_token": csrf_token(client, "/account/tokens"), "confirmed": "yes"}
    )
    leaver = make_user()
    leaver_browser = app.test_client()
    sign_in(leaver_browser, leaver)
    leavers = _create(leaver_browser, "leaver's")
    _admin_does(app, admin, f"/admin/staff/{leaver.id}/deactivate")
    return {
        "garbage": "Bearer garbage",
        "empty bearer": "Bearer ",
        "bare scheme": "Bearer",
        "unknown lny_": "Bearer lny_" + "x" * 43,
        "basic": "Basic eDp5",
        "revoked": f"Bearer {revoked}",
        "inactive owner's": f"Bearer {leavers}",
        "empty": "",
    }


def _refused(response, cookie_user) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="Lanyard"')
    assert cookie_user.email not in response.get_data(as_text=True)


def test_a_bad_authorization_header_never_falls_back_to_the_cookie_session(app, client):
    admin, user = make_user(Role.ADMIN), make_user(Role.OFFICE)
    sign_in(client, user)
    csrf = csrf_token(client, "/devices")
    assert client.get("/api/v1/me").get_json()["email"] == user.email  # the cookie alone still works
    for label, header in _dead_tokens(app, client, user, admin).items():
        _refused(client.get("/api/v1/me", headers={"Authorization": header}), user)
        _refused(client.get("/api/v1/devices?scope=all", headers={"Authorization": header}), user)
        posted = client.post(
            "/api/v1/devices",
            json={"kind": "camera", "make": "Canon", "model": label},
            headers={"Authorization": header, "X-CSRFToken": csrf},
        )
        _refused(posted, user)
        _refused(
            client.post("/api/v1/push-actions", json={"token": "x" * 43, "action": "approve"}, headers={"Authorization": header}),
            user,
        )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PersonalDevice)) == 0


def test_a_post_with_a_garbage_bearer_and_a_live_cookie_but_no_csrf_is_not_processed(app, client):
    user = make_user()
    sign_in(client, user)
    before = db.session.scalar(sa.select(sa.func.max(AuditEvent.seq)))
    response = client.post(
        "/api/v1/devices", json={"kind": "camera", "make": "Canon", "model": "G7"}, headers={"Authorization": "Bearer garbage"}
    )
    _refused(response, user)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PersonalDevice)) == 0
    assert db.session.scalar(sa.select(sa.func.max(AuditEvent.seq))) == before
    # Without the header the same cookie call is held to the CSRF check, as ever.
    assert client.post("/api/v1/devices", json={"kind": "camera", "make": "Canon", "model": "G7"}).status_code == 403


def test_no_credentials_on_the_api_is_a_401_that_names_the_scheme(app):
    response = app.test_client().get("/api/v1/me")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == 'Bearer realm="Lanyard"'


def test_pages_never_treat_an_authorization_header_as_sign_in(app, client):
    user = make_user()
    sign_in(client, user)
    secret = _create(client)
    stranger = app.test_client()
    assert stranger.get("/devices", headers={"Authorization": f"Bearer {secret}"}).status_code == 302
    # A signed-in browser's pages ignore the header: a garbage one neither refuses nor signs anyone else in ...
    assert client.get("/devices", headers={"Authorization": "Bearer garbage"}).status_code == 200
    # ... and a live token does not excuse a page's form from its CSRF token.
    refused = client.post("/account/tokens", data={"name": "sneaky"}, headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).where(ApiToken.name == "sneaky")) == 0


def test_a_live_token_with_someone_elses_cookie_acts_as_the_tokens_owner(app, client):
    owner, other = make_user(), make_user()
    sign_in(client, owner)
    secret = _create(client)
    other_browser = app.test_client()
    sign_in(other_browser, other)
    me = other_browser.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.get_json()["email"] == owner.email


def test_revoking_a_token_asks_first(app, client):
    sign_in(client, make_user())
    _create(client, "MIS sync")
    token = db.session.scalar(sa.select(ApiToken))
    page = client.get(f"/account/tokens/{token.id}/revoke")
    assert page.status_code == 200
    assert "Revoke the token \u201cMIS sync\u201d?" in page.get_data(as_text=True)
    unconfirmed = client.post(f"/account/tokens/{token.id}/revoke", data={"csrf_token": csrf_token(client, "/account/tokens")})
    assert unconfirmed.status_code == 303 and unconfirmed.headers["Location"].endswith(f"/account/tokens/{token.id}/revoke")
    assert db.session.get(ApiToken, token.id).revoked_at is None
    done = client.post(
        f"/account/tokens/{token.id}/revoke", data={"csrf_token": csrf_token(client, "/account/tokens"), "confirmed": "yes"}
    )
    assert done.status_code == 302
    assert db.session.get(ApiToken, token.id).revoked_at is not None
    other = app.test_client()
    sign_in(other, make_user())
    assert other.get(f"/account/tokens/{token.id}/revoke").status_code == 404
