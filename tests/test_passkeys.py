"""Passkey routes without a browser: challenges, ownership, refusals (the happy path runs in Chromium)."""

from __future__ import annotations

import json

import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, Passkey
from app.services.passkeys import RelyingParty
from tests.conftest import csrf_token
from tests.factories import make_user, sign_in


def _json_post(client, path, body, page="/sign-in"):
    return client.post(path, json=body, headers={"X-CSRFToken": csrf_token(client, page)})


def test_the_relying_party_comes_from_the_configured_base_url():
    rp = RelyingParty.from_base_url("https://lanyard.school.org.uk/", "Lanyard")
    assert rp.rp_id == "lanyard.school.org.uk"
    assert rp.origin == "https://lanyard.school.org.uk"


def test_registration_options_name_the_person_and_exclude_their_passkeys(client):
    user = make_user(name="Mrs A Adeyemi")
    sign_in(client, user)
    options = _json_post(client, "/account/passkeys/options", {}, "/account/passkeys").get_json()
    assert options["rp"]["id"] == "lanyard.test"
    assert options["user"]["displayName"] == "Mrs A Adeyemi"
    assert options["authenticatorSelection"]["residentKey"] == "required"


def test_registering_without_asking_first_or_with_garbage_adds_nothing(client):
    sign_in(client, make_user())
    no_challenge = _json_post(client, "/account/passkeys", {"credential": {}}, "/account/passkeys")
    assert no_challenge.status_code == 400
    _json_post(client, "/account/passkeys/options", {}, "/account/passkeys")
    garbage = _json_post(client, "/account/passkeys", {"credential": {"id": "x", "response": {}}}, "/account/passkeys")
    assert garbage.status_code == 422
    assert garbage.mimetype == "application/problem+json"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Passkey)) == 0


def test_a_forged_assertion_is_refused_and_audited(client):
    options = _json_post(client, "/sign-in/passkey/options", {}).get_json()
    assert options["rpId"] == "lanyard.test"
    forged = {
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {"clientDataJSON": "e30", "authenticatorData": "AA", "signature": "AA"},
    }
    response = _json_post(client, "/sign-in/passkey", {"credential": forged})
    assert response.status_code == 422
    assert client.get("/devices").status_code == 302
    assert db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "auth.passkey_failed")) is not None


def test_nobody_removes_another_persons_passkey(app, client):
    owner = make_user()
    passkey = Passkey(user_id=owner.id, credential_id="cred-1", public_key=b"k", name="Phone", sign_count=0)
    db.session.add(passkey)
    db.session.commit()
    sign_in(client, make_user())
    response = client.post(
        f"/account/passkeys/{passkey.id}/remove", data={"csrf_token": csrf_token(client, "/account/passkeys"), "confirmed": "yes"}
    )
    assert response.status_code == 404
    assert db.session.get(Passkey, passkey.id) is not None


def test_the_options_are_json_and_not_cached(client):
    response = _json_post(client, "/sign-in/passkey/options", {})
    assert response.headers["Cache-Control"] == "no-store"
    assert json.loads(response.get_data(as_text=True))["challenge"]


def test_removing_a_passkey_asks_first(app, client):
    owner = make_user()
    passkey = Passkey(user_id=owner.id, credential_id="cred-2", public_key=b"k", name="Work phone", sign_count=0)
    db.session.add(passkey)
    db.session.commit()
    passkey_id = passkey.id
    sign_in(client, owner)
    page = client.get(f"/account/passkeys/{passkey_id}/remove")
    assert "Remove the passkey \u201cWork phone\u201d?" in page.get_data(as_text=True)
    unconfirmed = client.post(
        f"/account/passkeys/{passkey_id}/remove", data={"csrf_token": csrf_token(client, "/account/passkeys")}
    )
    assert unconfirmed.status_code == 303
    assert db.session.get(Passkey, passkey_id) is not None
    client.post(
        f"/account/passkeys/{passkey_id}/remove", data={"csrf_token": csrf_token(client, "/account/passkeys"), "confirmed": "yes"}
    )
    db.session.expire_all()
    assert db.session.get(Passkey, passkey_id) is None
