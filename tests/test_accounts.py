"""Accounts and sessions (DESIGN.md section 10): argon2id, throttling, session rules, invitations, leavers."""

from __future__ import annotations

import re
import time

import sqlalchemy as sa
from argon2 import PasswordHasher

from app.extensions import db
from app.models import AuditEvent, LoginAttempt, PasswordToken, Role, User, UserRole, UserSession
from app.services import passwords
from tests.conftest import csrf_token
from tests.factories import PASSWORD, make_user, sign_in


def _actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq)))


def _try_sign_in(client, email, password, ip="10.0.0.1"):
    token = csrf_token(client, "/sign-in")
    return client.post(
        "/sign-in", data={"email": email, "password": password, "csrf_token": token}, environ_base={"REMOTE_ADDR": ip}
    )


def test_passwords_are_stored_with_argon2id(app):
    user = make_user()
    assert user.password_hash.startswith("$argon2id$")
    assert passwords.check_password(user.password_hash, PASSWORD)
    assert not passwords.check_password(user.password_hash, "wrong password")


def test_a_hash_made_with_old_parameters_is_replaced_at_sign_in(client):
    user = make_user()
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    db.session.execute(sa.update(User).where(User.id == user.id).values(password_hash=weak))
    db.session.commit()
    sign_in(client, user)
    assert db.session.get(User, user.id).password_hash != weak
    assert not passwords.needs_rehash(db.session.get(User, user.id).password_hash)


def test_sign_in_and_out_are_audited_and_failures_too(client):
    user = make_user()
    assert _try_sign_in(client, user.email, "not the password").status_code == 200
    sign_in(client, user)
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/")})
    assert _actions()[-3:] == ["auth.sign_in_failed", "auth.signed_in", "auth.signed_out"]
    assert client.get("/devices").status_code == 302


def test_the_failure_message_does_not_say_whether_the_account_exists(client):
    user = make_user()
    wrong_password = _try_sign_in(client, user.email, "wrong password").get_data(as_text=True)
    no_account = _try_sign_in(client, "nobody@school.test", "wrong password").get_data(as_text=True)
    message = "That email and password do not match an active account."
    assert message in wrong_password and message in no_account


def test_sign_in_gets_a_new_session(client):
    user = make_user()
    csrf_token(client, "/sign-in")
    with client.session_transaction() as before:
        before["planted"] = "by an attacker"
    sign_in(client, user)
    with client.session_transaction() as after:
        assert "planted" not in after
        assert after["sid"]


def test_throttling_is_keyed_on_account_and_ip_and_stored_in_the_database(client):
    user = make_user()
    for _ in range(5):
        _try_sign_in(client, user.email, "wrong", ip="10.0.0.1")
    throttled = _try_sign_in(client, user.email, PASSWORD, ip="10.0.0.1")
    assert throttled.status_code == 429
    assert "Too many attempts" in throttled.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginAttempt)) == 5
    # Another phone behind the same school Wi-Fi IP, with its own account, is not locked out.
    colleague = make_user()
    assert _try_sign_in(client, colleague.email, PASSWORD, ip="10.0.0.1").status_code == 302
    assert "auth.sign_in_throttled" in _actions()


def test_throttling_ends_after_the_window(client, frozen_clock):
    user = make_user()
    for _ in range(5):
        _try_sign_in(client, user.email, "wrong")
    assert _try_sign_in(client, user.email, PASSWORD).status_code == 429
    frozen_clock.advance(minutes=16)
    assert _try_sign_in(client, user.email, PASSWORD).status_code == 302


def test_idle_session_ends(client, app):
    user = make_user()
    sign_in(client, user)
    assert client.get("/devices").status_code == 200
    with client.session_transaction() as cookie:
        cookie["seen"] = time.time() - (app.config["SESSION_IDLE_MINUTES"] * 60 + 1)
    assert client.get("/devices").status_code == 302


def test_absolute_session_timeout(client, frozen_clock):
    user = make_user()
    sign_in(client, user)
    frozen_clock.advance(hours=11, minutes=59)
    assert client.get("/devices").status_code == 200
    frozen_clock.advance(minutes=2)
    assert client.get("/devices").status_code == 302


def test_sign_out_ends_the_session_even_for_a_copied_cookie(client, app):
    user = make_user()
    sign_in(client, user)
    stolen = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/")})
    replay = app.test_client()
    replay.set_cookie(app.config["SESSION_COOKIE_NAME"], stolen)
    assert replay.get("/devices").status_code == 302


def test_deactivating_a_leaver_ends_their_open_sessions_at_once(app):
    admin, leaver = make_user(Role.ADMIN), make_user()
    leaver_phone, admin_phone = app.test_client(), app.test_client()
    sign_in(leaver_phone, leaver)
    assert leaver_phone.get("/devices").status_code == 200
    sign_in(admin_phone, admin)
    admin_phone.post(
        f"/admin/staff/{leaver.id}/deactivate", data={"csrf_token": csrf_token(admin_phone, "/admin/staff"), "confirmed": "yes"}
    )
    assert leaver_phone.get("/devices").status_code == 302
    assert _try_sign_in(app.test_client(), leaver.email, PASSWORD).status_code == 200
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(UserSession)
            .where(UserSession.ended_at.is_(None), UserSession.user_id == leaver.id)
        )
        == 0
    )
    assert "user.deactivated" in _actions()


def test_an_admin_invites_staff_with_a_one_time_link(client):
    admin = make_user(Role.ADMIN)
    sign_in(client, admin)
    token = csrf_token(client, "/admin/staff/invite")
    page = client.post(
        "/admin/staff/invite",
        data={"display_name": "Mrs New Teacher", "email": "New.Teacher@School.test", "roles": ["approver"], "csrf_token": token},
        follow_redirects=True,
    ).get_data(as_text=True)
    link = re.search(r"(https://lanyard\.test/set-password/[A-Za-z0-9_-]+)", page).group(1)
    newcomer = db.session.scalar(sa.select(User).where(User.email == "new.teacher@school.test"))
    assert newcomer.roles == {Role.STAFF, Role.APPROVER}
    assert newcomer.password_hash is None

    path = link.removeprefix("https://lanyard.test")
    fresh = client.application.test_client()
    short = fresh.post(path, data={"password": "short", "csrf_token": csrf_token(fresh, path)})
    assert short.status_code == 200
    assert "New password: Use between 8 and 128 characters." in short.get_data(as_text=True)
    done = fresh.post(path, data={"password": "a long enough secret", "csrf_token": csrf_token(fresh, path)})
    assert done.status_code == 302
    assert fresh.get(path).status_code == 404, "the link works once"
    sign_in(client.application.test_client(), newcomer, "a long enough secret")
    assert {"user.created", "user.invite_issued", "user.password_set"} <= set(_actions())


def test_invitation_links_are_built_from_the_configured_base_url_not_the_host_header(app):
    from app.admin.routes import _set_password_link

    with app.test_request_context("/admin/staff/invite", headers={"Host": "evil.example"}):
        link = _set_password_link("token123")
    assert link == "https://lanyard.test/set-password/token123"


def test_an_admin_changes_roles_and_cannot_remove_their_own_admin(client):
    admin, teacher = make_user(Role.ADMIN), make_user()
    sign_in(client, admin)
    token = csrf_token(client, f"/admin/staff/{teacher.id}")
    client.post(
        f"/admin/staff/{teacher.id}", data={"display_name": teacher.display_name, "roles": ["office"], "csrf_token": token}
    )
    assert db.session.get(User, teacher.id).roles == {Role.STAFF, Role.OFFICE}
    response = client.post(
        f"/admin/staff/{admin.id}", data={"display_name": admin.display_name, "roles": [], "csrf_token": token}
    )
    assert response.status_code == 422
    assert Role.ADMIN in db.session.get(User, admin.id).roles


def test_changing_password_signs_out_other_browsers(app):
    user = make_user()
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop, user)
    sign_in(phone, user)
    token = csrf_token(phone, "/account")
    response = phone.post(
        "/account", data={"current_password": PASSWORD, "new_password": "brand new secret", "csrf_token": token}
    )
    assert response.status_code == 302
    assert phone.get("/devices").status_code == 200
    assert laptop.get("/devices").status_code == 302


def test_cookies_are_httponly_samesite_lax_and_secure_outside_development(app):
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    from app.config import settings_from_environment

    assert settings_from_environment(__import__("pathlib").Path(app.instance_path))["SESSION_COOKIE_SECURE"] is True


# Old links die: only the newest set-password link works, and setting a password ends every other one.


def _invite(client, email: str = "new.teacher@school.test") -> str:
    page = client.post(
        "/admin/staff/invite",
        data={
            "display_name": "Mrs New Teacher",
            "email": email,
            "roles": [],
            "csrf_token": csrf_token(client, "/admin/staff/invite"),
        },
        follow_redirects=True,
    ).get_data(as_text=True)
    return re.search(r"https://lanyard\.test(/set-password/[A-Za-z0-9_-]+)", page).group(1)


def _new_link(client, user_id: int) -> str:
    page = client.post(
        f"/admin/staff/{user_id}/password-link",
        data={"csrf_token": csrf_token(client, f"/admin/staff/{user_id}")},
        follow_redirects=True,
    ).get_data(as_text=True)
    return re.search(r"https://lanyard\.test(/set-password/[A-Za-z0-9_-]+)", page).group(1)


def _set_password(app, path: str, password: str = "a long enough secret"):
    browser = app.test_client()
    page = browser.get(path)
    if page.status_code != 200:
        return page
    return browser.post(path, data={"password": password, "csrf_token": csrf_token(browser, path)})


def _refused_clearly(response) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code == 404 and "This link no longer works" in text and "newest link" in text


def test_a_new_invitation_link_revokes_the_earlier_one(app, client):
    admin = make_user(Role.ADMIN)
    sign_in(client, admin)
    first = _invite(client)
    newcomer = db.session.scalar(sa.select(User).where(User.email == "new.teacher@school.test"))
    second = _new_link(client, newcomer.id)

    _refused_clearly(app.test_client().get(first))
    stranger = app.test_client()
    _refused_clearly(
        stranger.post(first, data={"password": "a long enough secret", "csrf_token": csrf_token(stranger, "/sign-in")})
    )
    assert db.session.get(User, newcomer.id).password_hash is None
    revoked = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "user.password_links_revoked"))
    assert revoked.actor_id == admin.id and revoked.subject_id == str(newcomer.id) and '"count":1' in revoked.details

    assert _set_password(app, second).status_code == 302
    sign_in(app.test_client(), newcomer, "a long enough secret")


def test_a_new_set_password_link_revokes_the_older_ones(app, client):
    admin, teacher = make_user(Role.ADMIN), make_user()
    sign_in(client, admin)
    links = [_new_link(client, teacher.id) for _ in range(3)]
    for old in links[:2]:
        _refused_clearly(_set_password(app, old, "an attacker's password"))
    assert _set_password(app, links[2]).status_code == 302
    sign_in(app.test_client(), teacher, "a long enough secret")
    assert _actions().count("user.password_links_revoked") == 2


def test_setting_a_password_revokes_every_outstanding_link(app, client):
    from app.clock import utcnow
    from app.database import write_intent
    from app.models import PasswordToken
    from app.services import accounts

    admin, teacher = make_user(Role.ADMIN), make_user()
    sign_in(client, admin)
    newest = _new_link(client, teacher.id)
    with write_intent():  # a link made before only the newest worked (issuing one now would revoke it)
        db.session.add(PasswordToken(user_id=teacher.id, token_hash="0" * 64, expires_at=utcnow() + accounts.INVITE_LIFETIME))
        db.session.commit()
    assert _set_password(app, newest).status_code == 302
    outstanding = db.session.scalars(
        sa.select(PasswordToken).where(
            PasswordToken.user_id == teacher.id, PasswordToken.used_at.is_(None), PasswordToken.expires_at > utcnow()
        )
    ).all()
    assert outstanding == []
    last = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action != "auth.signed_in").order_by(AuditEvent.seq.desc()).limit(1)
    )  # setting the password then signs them in
    assert (
        last.action == "user.password_links_revoked" and last.actor_id == teacher.id and '"reason":"password_set"' in last.details
    )
    _refused_clearly(app.test_client().get(newest))


# Issue 16 item 7: the invitation redirects after the post, and setting a password signs the person in.


def test_the_invitation_redirects_to_a_page_showing_the_link_and_a_refresh_makes_nothing_new(client):
    admin = make_user(Role.ADMIN)
    sign_in(client, admin)
    posted = client.post(
        "/admin/staff/invite",
        data={
            "display_name": "Mr Refresh",
            "email": "refresh@school.test",
            "roles": [],
            "csrf_token": csrf_token(client, "/admin/staff/invite"),
        },
    )
    newcomer = db.session.scalar(sa.select(User).where(User.email == "refresh@school.test"))
    assert posted.status_code == 302 and posted.headers["Location"].endswith(f"/admin/staff/{newcomer.id}/link")
    tokens_before = db.session.scalar(sa.select(sa.func.count()).select_from(PasswordToken))
    first, again = client.get(posted.headers["Location"]), client.get(posted.headers["Location"])
    link = re.search(r"https://lanyard\.test/set-password/[A-Za-z0-9_-]+", first.get_data(as_text=True)).group(0)
    assert link in again.get_data(as_text=True)  # a refresh shows the same link and issues no other
    assert 'data-copy-target="set-password-link"' in first.get_data(as_text=True)
    assert 'value="https://' not in first.get_data(as_text=True)  # the whole link as text, not cut off in a box
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PasswordToken)) == tokens_before
    assert _actions().count("user.invite_issued") == 1

    client.get(f"/admin/staff/{newcomer.id}")  # moving on forgets the link
    gone = client.get(f"/admin/staff/{newcomer.id}/link").get_data(as_text=True)
    assert "set-password/" not in gone and "make a new link" in gone


def test_a_new_password_link_for_someone_is_also_shown_after_a_redirect(client):
    admin, teacher = make_user(Role.ADMIN), make_user()
    sign_in(client, admin)
    posted = client.post(
        f"/admin/staff/{teacher.id}/password-link", data={"csrf_token": csrf_token(client, f"/admin/staff/{teacher.id}")}
    )
    assert posted.status_code == 302 and posted.headers["Location"].endswith(f"/admin/staff/{teacher.id}/link")
    assert "/set-password/" in client.get(posted.headers["Location"]).get_data(as_text=True)


def test_setting_a_password_through_a_link_signs_the_person_in(app, client):
    admin, teacher = make_user(Role.ADMIN), make_user()
    sign_in(client, admin)
    path = _new_link(client, teacher.id)
    browser = app.test_client()
    browser.get(path)
    done = browser.post(path, data={"password": "a long enough secret", "csrf_token": csrf_token(browser, path)})
    assert done.status_code == 302 and done.headers["Location"] == "/"
    home = browser.get("/")
    assert home.status_code == 200 and "Your password is set and you are signed in." in home.get_data(as_text=True)
    signed_in = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "auth.signed_in", AuditEvent.actor_id == teacher.id)
    ).all()
    assert len(signed_in) == 1 and '"method":"password_link"' in signed_in[0].details
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(UserSession)
            .where(UserSession.user_id == teacher.id, UserSession.ended_at.is_(None))
        )
        == 1
    )


def _session_for(person: User) -> str:
    from app.database import write_intent
    from app.services import accounts

    with write_intent():
        session_id = accounts.start_session(db.session, person, ip="10.0.0.1", user_agent="Firefox", method="password")
        db.session.commit()
    db.session.expire_all()
    return session_id


def test_the_session_lookup_brings_the_roles_and_the_current_policy_in_one_statement(app):
    from datetime import timedelta

    from sqlalchemy import event

    from app.services import accounts

    person = make_user(Role.OFFICE)
    person_id, session_id = person.id, _session_for(person)
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        live = accounts.live_session(db.session, person_id, session_id, timedelta(hours=12))
        assert live is not None and live.current_policy_id is None  # nothing published yet
        assert live.user.has_role(Role.OFFICE) and live.user.has_role(Role.STAFF)
        assert not live.user.has_role(Role.ADMIN, Role.APPROVER)
        assert live.user.roles == {Role.STAFF, Role.OFFICE}
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert [s.split()[0] for s in statements if s != "BEGIN"] == ["SELECT"], statements


def test_roles_changed_in_the_request_win_over_the_roles_read_with_the_session(app):
    from datetime import timedelta

    from app.database import write_intent
    from app.services import accounts

    admin = make_user(Role.ADMIN)
    person = make_user(Role.OFFICE, Role.APPROVER)
    admin_id, person_id, session_id = admin.id, person.id, _session_for(person)
    with write_intent():
        live = accounts.live_session(db.session, person_id, session_id, timedelta(hours=12))
        assert live is not None and live.user.has_role(Role.APPROVER)
        accounts.set_roles(db.session, db.session.get(User, admin_id), live.user, {Role.OFFICE})
        assert not live.user.has_role(Role.APPROVER)
        assert live.user.roles == {Role.STAFF, Role.OFFICE}
        db.session.commit()
    assert {r.role for r in db.session.scalars(sa.select(UserRole).where(UserRole.user_id == person_id))} == {"staff", "office"}
