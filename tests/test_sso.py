"""Sign in with Microsoft or Google (issue 14, item 1) against a fake provider over real HTTP.

The provider is ours (tests/oidc/fake_provider.py): it signs ID tokens with a key it publishes, so a
test can hand the app a token signed by another key, with altered claims, or for someone else.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from joserfc.jwk import RSAKey

from app.clock import utcnow
from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, Identity, Passkey, Role, SignInState, User
from app.services import accounts, sso
from app.services.errors import ValidationFailed
from app.sso import client as oidc_client
from app.sso.providers import configured_providers
from tests.conftest import csrf_token
from tests.factories import PASSWORD, make_user, sign_in
from tests.oidc.fake_provider import FakeProvider

TENANT = "0b1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
OTHER_TENANT = "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f"
DOMAIN = "school.test"


@pytest.fixture
def idps(app):
    """A fake Microsoft (Entra) and a fake Google, configured into the app."""
    microsoft, google = FakeProvider("ms-client", "ms-secret"), FakeProvider("google-client", "google-secret")
    app.config.update(
        OIDC_MICROSOFT_TENANT=TENANT,
        OIDC_MICROSOFT_CLIENT_ID="ms-client",
        OIDC_MICROSOFT_CLIENT_SECRET="ms-secret",
        OIDC_MICROSOFT_ISSUER=microsoft.issuer,
        OIDC_GOOGLE_DOMAIN=DOMAIN,
        OIDC_GOOGLE_CLIENT_ID="google-client",
        OIDC_GOOGLE_CLIENT_SECRET="google-secret",
        OIDC_GOOGLE_ISSUER=google.issuer,
    )
    yield {"microsoft": microsoft, "google": google}
    microsoft.stop()
    google.stop()
    oidc_client.forget_cached()


def ms_claims(email: str, subject: str = "ms-subject-1", **extra) -> dict:
    return {"sub": subject, "tid": TENANT, "email": email, "xms_edov": True, "name": "Signed In Person", **extra}


def google_claims(email: str, subject: str = "google-subject-1", **extra) -> dict:
    return {"sub": subject, "hd": DOMAIN, "email": email, "email_verified": True, "name": "Signed In Person", **extra}


def start(client, provider: str, next_url: str = "") -> str:
    """Press "Sign in with ..." and return where the app sends the browser."""
    token = csrf_token(client, "/sign-in")
    response = client.post(f"/sign-in/oidc/{provider}", data={"csrf_token": token, "next": next_url})
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return response.headers["Location"]


def come_back(client, provider: str, query: dict):
    return client.get(f"/sign-in/oidc/{provider}/callback?{urlencode(query)}")


def sign_in_with(client, idps, provider: str, claims: dict, **options):
    location = start(client, provider)
    return come_back(client, provider, idps[provider].authorise(location, claims, **options))


def events(action: str) -> list[dict]:
    rows = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
    return [{"actor_id": row.actor_id, **json.loads(row.details)} for row in rows]


def signed_in(client) -> bool:
    return client.get("/").status_code == 200


def test_no_buttons_without_configuration_and_a_button_per_configured_provider(client, app):
    page = client.get("/sign-in").get_data(as_text=True)
    assert "Sign in with Microsoft" not in page and "Sign in with Google" not in page
    assert client.post("/sign-in/oidc/microsoft", data={"csrf_token": csrf_token(client)}).status_code == 404
    app.config.update(OIDC_GOOGLE_DOMAIN=DOMAIN, OIDC_GOOGLE_CLIENT_ID="id", OIDC_GOOGLE_CLIENT_SECRET="secret")
    page = client.get("/sign-in").get_data(as_text=True)
    assert "Sign in with Google" in page and "Sign in with Microsoft" not in page
    # A tenant that is not a GUID ("common" would let any tenant in) is not a configuration.
    app.config.update(OIDC_MICROSOFT_TENANT="common", OIDC_MICROSOFT_CLIENT_ID="id", OIDC_MICROSOFT_CLIENT_SECRET="secret")
    assert list(configured_providers(app.config)) == ["google"]


def test_first_sign_in_links_by_email_then_by_subject(client, idps):
    person = make_user(email="bclarke@school.test")
    location = start(client, "microsoft", next_url="/devices")
    assert location.startswith(idps["microsoft"].issuer + "/auth?")
    assert "redirect_uri=https%3A%2F%2Flanyard.test%2Fsign-in%2Foidc%2Fmicrosoft%2Fcallback" in location
    response = come_back(client, "microsoft", idps["microsoft"].authorise(location, ms_claims("BClarke@School.test")))
    assert response.status_code == 302 and response.headers["Location"] == "/devices"
    assert signed_in(client)
    identity = db.session.scalar(sa.select(Identity))
    assert (identity.provider, identity.issuer, identity.subject, identity.user_id) == (
        "microsoft",
        idps["microsoft"].issuer,
        "ms-subject-1",
        person.id,
    )
    assert identity.last_used_at is not None
    assert events("auth.sso_signed_in") == [{"actor_id": person.id, "provider": "microsoft", "matched_by": "email"}]
    assert events("auth.signed_in")[-1] == {"actor_id": person.id, "method": "microsoft"}

    # Later: the subject decides, even when the email the provider sends has changed.
    other = app_client(client)
    response = sign_in_with(other, idps, "microsoft", ms_claims("renamed@school.test"))
    assert response.status_code == 302 and signed_in(other)
    assert events("auth.sso_signed_in")[-1] == {"actor_id": person.id, "provider": "microsoft", "matched_by": "subject"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Identity)) == 1


def app_client(client):
    return client.application.test_client()


def test_one_account_across_providers(client, idps):
    person = make_user(email="cdavies@school.test")
    assert sign_in_with(client, idps, "microsoft", ms_claims("cdavies@school.test")).status_code == 302
    other = app_client(client)
    assert sign_in_with(other, idps, "google", google_claims("cdavies@school.test")).status_code == 302
    assert signed_in(other)
    linked = db.session.execute(sa.select(Identity.provider, Identity.user_id).order_by(Identity.provider)).all()
    assert linked == [("google", person.id), ("microsoft", person.id)]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


@pytest.mark.parametrize(
    ("provider", "claims", "reason"),
    [
        ("microsoft", ms_claims("bclarke@school.test", tid=OTHER_TENANT), "wrong_tenant"),
        ("microsoft", ms_claims("bclarke@school.test", tid=None), "wrong_tenant"),
        ("google", google_claims("bclarke@school.test", hd="elsewhere.test"), "wrong_domain"),
        ("google", google_claims("bclarke@school.test", hd=None), "wrong_domain"),  # a personal Google account
        ("microsoft", ms_claims("bclarke@school.test", xms_edov=False), "email_unverified"),
        ("microsoft", ms_claims("bclarke@school.test", xms_edov=None), "email_unverified"),
        ("microsoft", ms_claims(None, preferred_username="bclarke@school.test"), "email_missing"),
        ("google", google_claims("bclarke@school.test", email_verified=False), "email_unverified"),
    ],
)
def test_accounts_the_school_does_not_vouch_for_are_refused(client, idps, provider, claims, reason):
    make_user(email="bclarke@school.test")
    response = sign_in_with(client, idps, provider, claims)
    assert response.status_code == 403
    assert "You are not signed in" in response.get_data(as_text=True)
    assert not signed_in(client)
    refused = events("auth.sso_refused")
    assert [(r["provider"], r["reason"]) for r in refused] == [(provider, reason)]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Identity)) == 0
    assert events("auth.signed_in") == [] and events("auth.sso_signed_in") == []


def test_entra_email_verified_claim_is_accepted_in_place_of_xms_edov(client, idps):
    make_user(email="eevans@school.test")
    response = sign_in_with(client, idps, "microsoft", ms_claims("eevans@school.test", xms_edov=None, email_verified=True))
    assert response.status_code == 302 and signed_in(client)


def test_a_replayed_callback_is_refused(client, idps):
    make_user(email="bclarke@school.test")
    location = start(client, "microsoft")
    query = idps["microsoft"].authorise(location, ms_claims("bclarke@school.test"))
    attacker = app_client(client)
    attacker.set_cookie("lanyard_session", client.get_cookie("lanyard_session").value, domain="localhost")
    assert come_back(client, "microsoft", query).status_code == 302
    # The same callback URL again, even with the cookie from before the sign-in: the state is spent.
    assert come_back(attacker, "microsoft", query).status_code == 403
    assert come_back(client, "microsoft", query).status_code == 403
    assert [r["reason"] for r in events("auth.sso_refused")] == ["state_replayed", "state_replayed"]
    assert idps["microsoft"].token_requests == 1  # a refused state never reaches the provider
    assert not signed_in(attacker)


def test_a_sign_in_started_in_another_browser_is_refused(client, idps):
    """Login CSRF: an attacker's own callback URL, opened in the victim's browser, signs nobody in."""
    make_user(email="bclarke@school.test")
    attacker = app_client(client)
    query = idps["microsoft"].authorise(start(attacker, "microsoft"), ms_claims("bclarke@school.test"))
    assert come_back(client, "microsoft", query).status_code == 403
    assert [r["reason"] for r in events("auth.sso_refused")] == ["state_other_browser"]
    assert not signed_in(client)
    assert come_back(attacker, "microsoft", query).status_code == 403  # and it is spent


def test_unknown_missing_and_expired_states_and_provider_errors(client, idps, frozen_clock):
    make_user(email="bclarke@school.test")
    assert come_back(client, "microsoft", {"code": "x"}).status_code == 403
    assert come_back(client, "microsoft", {"code": "x", "state": "made-up"}).status_code == 403
    location = start(client, "microsoft")
    query = idps["microsoft"].authorise(location, ms_claims("bclarke@school.test"))
    frozen_clock.advance(minutes=11)
    assert come_back(client, "microsoft", query).status_code == 403
    location = start(client, "microsoft")
    state = idps["microsoft"].authorise(location, {})["state"]
    assert come_back(client, "microsoft", {"error": "access_denied", "state": state}).status_code == 403
    # A state made for Google is not accepted at Microsoft's callback.
    google_state = idps["google"].authorise(start(client, "google"), {})["state"]
    assert come_back(client, "microsoft", {"code": "x", "state": google_state}).status_code == 403
    reasons = [r["reason"] for r in events("auth.sso_refused")]
    assert reasons == ["state_missing", "state_unknown", "state_expired", "provider_error", "state_unknown"]


def test_unknown_provider_is_not_found(client, idps):
    assert client.get("/sign-in/oidc/facebook/callback?code=x&state=y").status_code == 404
    assert client.post("/sign-in/oidc/facebook", data={"csrf_token": csrf_token(client)}).status_code == 404


ANOTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "current"})


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("other_key", "id_token_signature"),
        ("altered_claims", "id_token_signature"),
        ("alg_none", "id_token_signature"),
        ("wrong_audience", "id_token_aud"),
        ("wrong_issuer", "id_token_iss"),
        ("expired", "id_token_expired"),
        ("wrong_nonce", "id_token_nonce"),
        ("no_nonce", "id_token_nonce"),
    ],
)
def test_a_tampered_id_token_is_refused(client, idps, tamper, reason):
    person = make_user(email="bclarke@school.test")
    fake = idps["microsoft"]
    location = start(client, "microsoft")
    claims = ms_claims("bclarke@school.test")
    options: dict = {}
    if tamper == "other_key":
        options["sign_with"] = ANOTHER_KEY
    elif tamper == "wrong_audience":
        claims["aud"] = "someone-elses-client"
    elif tamper == "wrong_issuer":
        claims["iss"] = "https://login.microsoftonline.com/" + TENANT + "/v2.0"
    elif tamper == "expired":
        claims["exp"] = int(utcnow().timestamp()) - 3600
    elif tamper == "wrong_nonce":
        claims["nonce"] = "not-the-nonce-we-sent"
    elif tamper == "no_nonce":
        claims["nonce"] = None
    query = fake.authorise(location, claims, **options)
    if tamper in ("altered_claims", "alg_none"):
        genuine = fake.sign({**fake.codes[query["code"]]["claims"], "email": "someone@school.test"})
        header, _payload, signature = genuine.split(".")
        forged = fake.sign({**fake.codes[query["code"]]["claims"], "email": "admin@school.test"}).split(".")[1]
        fake.codes[query["code"]]["raw"] = (
            f"{header}.{forged}.{signature}" if tamper == "altered_claims" else f"eyJhbGciOiJub25lIn0.{forged}."
        )
    response = come_back(client, "microsoft", query)
    assert response.status_code == 403
    assert [r["reason"] for r in events("auth.sso_refused")] == [reason]
    assert not signed_in(client)
    assert events("auth.signed_in") == []
    # Nothing of the token reaches the audit log.
    details = db.session.scalars(sa.select(AuditEvent.details)).all()
    assert not any("eyJ" in d or query["code"] in d for d in details)
    assert person.id  # the person exists; the token still got nobody in


def test_the_check_itself_refuses_a_token_from_another_key(idps, app):
    provider = configured_providers(app.config)["microsoft"]
    fake = idps["microsoft"]
    found = oidc_client.metadata(provider, 5)
    claims = {"iss": fake.issuer, "aud": "ms-client", "sub": "s", "iat": 1, "exp": 2**31, "nonce": "n"}
    assert oidc_client.check_id_token(provider, found, fake.sign(claims), nonce="n", timeout=5)["sub"] == "s"
    with pytest.raises(oidc_client.TokenRejected) as refused:
        oidc_client.check_id_token(provider, found, fake.sign(claims, ANOTHER_KEY), nonce="n", timeout=5)
    assert refused.value.reason == "id_token_signature"
    with pytest.raises(oidc_client.TokenRejected) as refused:
        oidc_client.check_id_token(provider, found, fake.sign(claims), nonce="other", timeout=5)
    assert refused.value.reason == "id_token_nonce"


def test_a_deactivated_person_is_refused_by_email_and_by_subject(client, idps):
    admin = make_user(Role.ADMIN)
    person = make_user(email="leaver@school.test")
    with write_intent():
        accounts.deactivate_user(db.session, db.session.get(User, admin.id), db.session.get(User, person.id))
        db.session.commit()
    assert sign_in_with(client, idps, "google", google_claims("leaver@school.test")).status_code == 403
    assert events("auth.sso_refused")[-1] == {
        "actor_id": person.id,
        "provider": "google",
        "reason": "deactivated",
        "email_domain": DOMAIN,
    }
    # Linked before leaving: the subject finds them, and they are still refused.
    with write_intent():
        db.session.add(Identity(provider="microsoft", issuer=idps["microsoft"].issuer, subject="ms-leaver", user_id=person.id))
        db.session.commit()
    assert sign_in_with(client, idps, "microsoft", ms_claims("leaver@school.test", subject="ms-leaver")).status_code == 403
    assert events("auth.sso_refused")[-1]["reason"] == "deactivated"
    assert not signed_in(client)


def test_accounts_are_created_on_first_sign_in_only_when_the_admin_allowed_it(client, idps):
    admin = make_user(Role.ADMIN)
    response = sign_in_with(client, idps, "google", google_claims("newstarter@school.test", name="Ms N Starter"))
    assert response.status_code == 403 and events("auth.sso_refused")[-1]["reason"] == "no_account"
    assert accounts.find_user_by_email(db.session, "newstarter@school.test") is None
    with write_intent():
        sso.save_sign_in_rules(
            db.session, db.session.get(User, admin.id), {}, passwords_off_wanted=False, create_domain="other.test"
        )
        db.session.commit()
    assert sign_in_with(client, idps, "google", google_claims("newstarter@school.test")).status_code == 403
    with write_intent():
        sso.save_sign_in_rules(
            db.session, db.session.get(User, admin.id), {}, passwords_off_wanted=False, create_domain="@School.test"
        )
        db.session.commit()
    response = sign_in_with(client, idps, "google", google_claims("newstarter@school.test", name="Ms N Starter"))
    assert response.status_code == 302 and signed_in(client)
    made = accounts.find_user_by_email(db.session, "newstarter@school.test")
    assert made.display_name == "Ms N Starter" and made.roles == {Role.STAFF} and made.password_hash is None
    assert events("auth.sso_signed_in")[-1] == {"actor_id": made.id, "provider": "google", "matched_by": "created"}
    assert events("user.created")[-1]["actor_id"] is None


def test_passwords_off_needs_a_provider_and_an_admin_who_can_still_get_in(app, idps):
    admin = make_user(Role.ADMIN)
    actor = db.session.get(User, admin.id)
    with write_intent(), pytest.raises(ValidationFailed) as refused:
        sso.save_sign_in_rules(db.session, actor, {}, passwords_off_wanted=True, create_domain="")
    assert "Microsoft or Google" in refused.value.field_errors["passwords_off"][0]
    db.session.rollback()
    providers = configured_providers(app.config)
    with write_intent(), pytest.raises(ValidationFailed) as refused:
        sso.save_sign_in_rules(db.session, actor, providers, passwords_off_wanted=True, create_domain="")
    assert "yourself first" in refused.value.field_errors["passwords_off"][0]
    db.session.rollback()
    with write_intent():
        db.session.add(Passkey(user_id=actor.id, credential_id="abc", public_key=b"k", name="Phone"))
        assert sso.save_sign_in_rules(db.session, actor, providers, passwords_off_wanted=True, create_domain="") == 1
        db.session.commit()
    assert sso.passwords_off(db.session, providers)
    assert not sso.passwords_off(db.session, {})  # providers gone from the server: passwords work again


def test_require_sso_turns_passwords_off(client, app, idps):
    admin = make_user(Role.ADMIN, email="admin@school.test")
    staff = make_user(email="bclarke@school.test")
    link = None
    with write_intent():
        link = accounts.issue_password_token(db.session, None, db.session.get(User, staff.id))
        db.session.commit()
    # The admin signs in with Microsoft (so they cannot lock themselves out), then turns passwords off.
    assert sign_in_with(client, idps, "microsoft", ms_claims("admin@school.test")).status_code == 302
    page = client.get("/admin/sso")
    assert page.status_code == 200 and "https://lanyard.test/sign-in/oidc/google/callback" in page.get_data(as_text=True)
    response = client.post(
        "/admin/sso", data={"csrf_token": csrf_token(client, "/admin/sso"), "passwords_off": "y", "create_domain": ""}
    )
    assert response.status_code == 302
    assert events("setting.changed")[-1] == {"actor_id": admin.id, "from": False, "to": True}

    visitor = app_client(client)
    page = visitor.get("/sign-in").get_data(as_text=True)
    assert "passwords are turned off" in page and 'name="password"' not in page and "Sign in with Google" in page
    token = csrf_token(visitor, "/sign-in")
    refused = visitor.post("/sign-in", data={"email": staff.email, "password": PASSWORD, "csrf_token": token})
    assert refused.status_code == 403 and "Passwords are turned off" in refused.get_data(as_text=True)
    assert events("auth.sign_in_failed")[-1] == {"actor_id": staff.id, "reason": "passwords_off"}
    assert not signed_in(visitor)
    assert visitor.get(f"/set-password/{link}").status_code == 403
    assert accounts.find_password_token(db.session, link) is not None  # refused, not spent
    # Signing in with a provider still works.
    assert sign_in_with(visitor, idps, "google", google_claims("bclarke@school.test")).status_code == 302
    # And with no provider on the server any more, passwords come back rather than locking everyone out.
    app.config.update(OIDC_MICROSOFT_CLIENT_ID="", OIDC_GOOGLE_CLIENT_ID="")
    sign_in(app_client(client), staff)


def test_admin_sign_in_page_refuses_passwords_off_without_providers(client):
    admin = make_user(Role.ADMIN)
    sign_in(client, admin)
    page = client.get("/admin/sso").get_data(as_text=True)
    assert "Not set up" in page
    response = client.post("/admin/sso", data={"csrf_token": csrf_token(client, "/admin/sso"), "passwords_off": "y"})
    assert response.status_code == 422 and "nobody could sign in" in response.get_data(as_text=True)
    assert events("setting.changed") == []


def test_old_sign_in_states_are_forgotten(app, idps, client, frozen_clock):
    start(client, "google")
    with write_intent():
        assert sso.purge_sign_in_states(db.session, utcnow() + timedelta(hours=2)) == 0
        assert sso.purge_sign_in_states(db.session, utcnow() + timedelta(days=2)) == 1
        db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SignInState)) == 0
