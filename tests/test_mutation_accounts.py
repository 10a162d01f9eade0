"""Sessions and sign-in rules pinned exactly: throttling, signing in and out, live sessions with idle and
absolute expiry, password changes and set-password links, leavers, role changes, and where sign-in returns to.

Written for mutation testing (issue 19): each assertion is one a changed comparison, boundary, message or
audit field in the functions of app/services/accounts.py that protect people would break. Direct calls of
the domain functions (and of ``safe_next`` in a request context), no pages.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from hashlib import sha256

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy import event

from app.auth.routes import safe_next
from app.database import write_intent
from app.extensions import db
from app.models import ApiToken, AuditEvent, LoginAttempt, PasswordToken, Role, User, UserRole, UserSession
from app.services import accounts, passwords
from app.services.api_tokens import create_token
from app.services.errors import Conflict, NotFound, ValidationFailed
from tests.factories import PASSWORD, make_user

WINDOW = timedelta(minutes=15)
NEW_PASSWORD = "a new long passphrase"


@pytest.fixture(autouse=True)
def _frozen(frozen_clock):
    return frozen_clock


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def _subject(event: AuditEvent) -> tuple:
    return (event.actor_id, event.subject_type, event.subject_id)


def _sign_in(email: str, password: str = PASSWORD, ip: str = "10.0.0.1", max_failures: int = 3):
    with write_intent():
        result = accounts.sign_in(
            db.session, email=email, password=password, ip=ip, user_agent="Firefox", max_failures=max_failures, window=WINDOW
        )
        db.session.commit()
    return result


def _attempts() -> list[tuple[str, bool]]:
    return [(row.throttle_key, row.succeeded) for row in db.session.scalars(sa.select(LoginAttempt).order_by(LoginAttempt.id))]


def _start(user: User, ip: str = "10.0.0.1", user_agent: str = "Firefox", method: str = "password") -> str:
    with write_intent():
        session_id = accounts.start_session(db.session, user, ip=ip, user_agent=user_agent, method=method)
        db.session.commit()
    return session_id


def _ended(session_id: str):
    db.session.expire_all()
    return db.session.get(UserSession, session_id).ended_at


# Email addresses and the throttle key ---------------------------------------------------------------------


def test_an_email_address_is_trimmed_and_lower_cased():
    assert accounts.normalise_email("  Ms.Office@School.ORG.uk \n") == "ms.office@school.org.uk"
    assert accounts.normalise_email(None) == ""  # type: ignore[arg-type]


def test_a_person_is_found_by_email_whatever_its_case(app):
    person = make_user(email="mr.teacher@school.test")
    assert accounts.find_user_by_email(db.session, " MR.Teacher@School.test ").id == person.id
    assert accounts.find_user_by_email(db.session, "nobody@school.test") is None


def test_the_throttle_key_is_the_hash_of_the_normalised_email_and_the_ip():
    expected = sha256(b"a@school.test|10.0.0.1").hexdigest()
    assert accounts.throttle_key(" A@School.test ", "10.0.0.1") == expected
    assert accounts.throttle_key("a@school.test", "10.0.0.2") != expected


# Signing in ---------------------------------------------------------------------------------------------


def test_a_good_password_signs_in_records_the_attempt_and_opens_a_session(app):
    person = make_user()
    result = _sign_in(person.email.upper())
    assert result.user.id == person.id and result.throttled is False
    assert _attempts() == [(accounts.throttle_key(person.email, "10.0.0.1"), True)]
    row = db.session.get(UserSession, result.session_id)
    assert (row.user_id, row.ip, row.user_agent, row.ended_at) == (person.id, "10.0.0.1", "Firefox", None)
    [event] = _events("auth.signed_in")
    assert _subject(event) == (person.id, "user", str(person.id))
    assert json.loads(event.details) == {"method": "password"}
    assert _events("auth.sign_in_failed") == []


def test_a_wrong_password_fails_with_the_attempt_recorded_and_audited(app):
    person = make_user()
    result = _sign_in(person.email, "not the password")
    assert (result.user, result.session_id, result.throttled) == (None, None, False)
    assert _attempts() == [(accounts.throttle_key(person.email, "10.0.0.1"), False)]
    [event] = _events("auth.sign_in_failed")
    assert _subject(event) == (person.id, "user", str(person.id))
    assert json.loads(event.details) == {"reason": "bad_credentials"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UserSession)) == 0


def test_an_unknown_email_fails_like_a_wrong_password(app):
    result = _sign_in("nobody@school.test")
    assert (result.user, result.throttled) == (None, False)
    assert _attempts() == [(accounts.throttle_key("nobody@school.test", "10.0.0.1"), False)]
    [event] = _events("auth.sign_in_failed")
    assert _subject(event) == (None, "user", "")
    assert json.loads(event.details) == {"reason": "bad_credentials"}


def test_a_leaver_with_the_right_password_is_refused_and_the_reason_audited(app):
    person = make_user()
    with write_intent():
        accounts.deactivate_user(db.session, None, person)
        db.session.commit()
    result = _sign_in(person.email)
    assert (result.user, result.throttled) == (None, False)
    assert _attempts() == [(accounts.throttle_key(person.email, "10.0.0.1"), False)]
    assert json.loads(_events("auth.sign_in_failed")[0].details) == {"reason": "deactivated"}


def test_a_leaver_with_a_wrong_password_is_a_bad_credential(app):
    person = make_user()
    with write_intent():
        accounts.deactivate_user(db.session, None, person)
        db.session.commit()
    _sign_in(person.email, "not the password")
    assert json.loads(_events("auth.sign_in_failed")[0].details) == {"reason": "bad_credentials"}


def test_throttling_starts_at_exactly_max_failures_for_that_account_and_ip(app):
    person = make_user()
    for _ in range(2):
        assert _sign_in(person.email, "wrong").throttled is False
    assert _sign_in(person.email, "wrong", ip="10.0.0.2").throttled is False  # another IP: its own count
    assert _sign_in(person.email, "wrong").throttled is False  # the third failure is still checked
    throttled = _sign_in(person.email)  # the right password, but three failures in the window
    assert (throttled.user, throttled.session_id, throttled.throttled) == (None, None, True)
    [event] = _events("auth.sign_in_throttled")
    assert _subject(event) == (person.id, "user", str(person.id))
    assert json.loads(event.details) == {"email_domain": "school.test"}
    assert len(_attempts()) == 4, "a throttled attempt is not counted again"
    assert _sign_in(person.email, ip="10.0.0.2").user.id == person.id


def test_throttling_names_the_domain_after_the_last_at_sign(app):
    for _ in range(3):
        _sign_in('"a@b"@Elsewhere.Example', "x")
    assert _sign_in('"a@b"@elsewhere.example', "x").throttled is True
    assert json.loads(_events("auth.sign_in_throttled")[0].details) == {"email_domain": "elsewhere.example"}


def test_throttling_an_unknown_email_names_only_its_domain(app):
    for _ in range(3):
        _sign_in("Nobody@Elsewhere.Example", "x")
    assert _sign_in("nobody@elsewhere.example", "x").throttled is True
    [event] = _events("auth.sign_in_throttled")
    assert _subject(event) == (None, "user", "")
    assert json.loads(event.details) == {"email_domain": "elsewhere.example"}


def test_failures_count_only_inside_the_window(app, frozen_clock):
    person = make_user()
    key = accounts.throttle_key(person.email, "10.0.0.1")
    for _ in range(3):
        _sign_in(person.email, "wrong")
    frozen_clock.advance(minutes=15)  # the failures are exactly the window old: no longer counted
    assert accounts._recent_failures(db.session, key, WINDOW) == 0
    frozen_clock.advance(seconds=-1)
    assert accounts._recent_failures(db.session, key, WINDOW) == 3


def test_a_success_clears_the_failures_before_it(app, frozen_clock):
    person = make_user()
    key = accounts.throttle_key(person.email, "10.0.0.1")
    _sign_in(person.email, "wrong")
    frozen_clock.advance(seconds=1)
    _sign_in(person.email)
    assert accounts._recent_failures(db.session, key, WINDOW) == 0
    frozen_clock.advance(seconds=1)
    _sign_in(person.email, "wrong")
    _sign_in(person.email, "wrong")
    assert accounts._recent_failures(db.session, key, WINDOW) == 2
    assert accounts._recent_failures(db.session, accounts.throttle_key(person.email, "10.0.0.9"), WINDOW) == 0


def test_only_a_success_with_the_same_account_and_ip_clears_the_failures(app, frozen_clock):
    person, colleague = make_user(), make_user()
    key = accounts.throttle_key(person.email, "10.0.0.1")
    _sign_in(person.email, "wrong")
    _sign_in(person.email, "wrong")
    frozen_clock.advance(seconds=1)
    _sign_in(colleague.email)  # someone else, from the same address
    _sign_in(person.email, ip="10.0.0.9")  # the same person, from elsewhere
    assert accounts._recent_failures(db.session, key, WINDOW) == 2


def test_a_failure_at_the_same_moment_as_the_success_is_not_counted(app):
    person = make_user()
    key = accounts.throttle_key(person.email, "10.0.0.1")
    _sign_in(person.email)
    _sign_in(person.email, "wrong")  # the frozen clock: the same instant as the success
    assert accounts._recent_failures(db.session, key, WINDOW) == 0


def test_an_old_hash_is_upgraded_at_sign_in(app):
    person = make_user()
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with write_intent():
        db.session.get(User, person.id).password_hash = old
        db.session.commit()
    assert _sign_in(person.email).user is not None
    stored = db.session.get(User, person.id).password_hash
    assert stored != old and not passwords.needs_rehash(stored) and passwords.check_password(stored, PASSWORD)


def test_a_current_hash_is_kept_at_sign_in(app):
    person = make_user()
    before = person.password_hash
    _sign_in(person.email)
    assert db.session.get(User, person.id).password_hash == before


# Sessions -----------------------------------------------------------------------------------------------


def test_a_session_keeps_who_where_and_how_and_is_audited(app):
    person = make_user()
    session_id = _start(person, ip="1" * 80, user_agent="A" * 300, method="passkey")
    assert len(session_id) == 43
    row = db.session.get(UserSession, session_id)
    assert (row.user_id, row.ip, row.user_agent, row.ended_at) == (person.id, "1" * 64, "A" * 255, None)
    [event] = _events("auth.signed_in")
    assert _subject(event) == (person.id, "user", str(person.id))
    assert json.loads(event.details) == {"method": "passkey"}
    assert _start(person) != session_id


def test_a_session_is_idle_only_after_more_than_the_idle_time():
    idle = timedelta(minutes=30)
    assert accounts.idle_too_long(1000.0, 1000.0 + 1800, idle) is False
    assert accounts.idle_too_long(1000.0, 1000.0 + 1800.5, idle) is True
    assert accounts.idle_too_long(0, 1000.0, timedelta(seconds=999)) is True
    assert accounts.idle_too_long(0, 999.0, timedelta(seconds=999)) is False


def test_a_live_session_gives_its_person_until_the_absolute_limit(app, frozen_clock):
    person = make_user(Role.APPROVER)
    session_id = _start(person)
    absolute = timedelta(hours=12)
    found = accounts.live_session_user(db.session, person.id, session_id, absolute)
    assert found.id == person.id and Role.APPROVER in found.roles
    frozen_clock.advance(hours=12, seconds=-1)
    assert accounts.live_session_user(db.session, person.id, session_id, absolute).id == person.id
    frozen_clock.advance(seconds=1)
    assert accounts.live_session_user(db.session, person.id, session_id, absolute) is None


def test_a_live_session_and_its_persons_roles_take_one_query(app):
    person = make_user(Role.OFFICE, Role.ADMIN)
    session_id, person_id = _start(person), person.id
    db.session.expire_all()
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        found = accounts.live_session_user(db.session, person_id, session_id, timedelta(hours=12))
        assert found.roles == {Role.STAFF, Role.OFFICE, Role.ADMIN}
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert [s.split()[0] for s in statements if s != "BEGIN"] == ["SELECT"], "\n".join(statements)


def test_a_session_is_not_live_for_anyone_else_nor_once_ended_nor_for_a_leaver(app):
    person, other = make_user(), make_user()
    session_id = _start(person)
    absolute = timedelta(hours=12)
    assert accounts.live_session_user(db.session, other.id, session_id, absolute) is None
    assert accounts.live_session_user(db.session, person.id, None, absolute) is None
    assert accounts.live_session_user(db.session, person.id, "", absolute) is None
    assert accounts.live_session_user(db.session, person.id, session_id + "x", absolute) is None
    with write_intent():
        db.session.get(User, person.id).is_active_account = False
        db.session.commit()
    assert accounts.live_session_user(db.session, person.id, session_id, absolute) is None
    with write_intent():
        db.session.get(User, person.id).is_active_account = True
        db.session.get(UserSession, session_id).ended_at = db.session.get(UserSession, session_id).created_at
        db.session.commit()
    assert accounts.live_session_user(db.session, person.id, session_id, absolute) is None


def test_signing_out_ends_that_session_only_and_is_audited(app, frozen_clock):
    person = make_user()
    this, other = _start(person), _start(person)
    frozen_clock.advance(minutes=5)
    with write_intent():
        accounts.sign_out(db.session, person, this)
        db.session.commit()
    assert _ended(this) == frozen_clock.now and _ended(other) is None
    [event] = _events("auth.signed_out")
    assert _subject(event) == (person.id, "user", str(person.id))


def test_signing_out_an_ended_or_missing_session_keeps_it_as_it_was(app, frozen_clock):
    person = make_user()
    session_id = _start(person)
    first_end = frozen_clock.now
    with write_intent():
        accounts.sign_out(db.session, person, session_id)
        db.session.commit()
    frozen_clock.advance(minutes=5)
    with write_intent():
        accounts.sign_out(db.session, person, session_id)
        accounts.sign_out(db.session, person, None)
        accounts.sign_out(db.session, person, "no-such-session")
        db.session.commit()
    assert _ended(session_id) == first_end
    assert len(_events("auth.signed_out")) == 4


def test_ending_all_sessions_ends_only_that_persons_live_ones(app, frozen_clock):
    person, other = make_user(), make_user()
    ended_before, live_one, live_two, others = _start(person), _start(person), _start(person), _start(other)
    with write_intent():
        accounts.sign_out(db.session, person, ended_before)
        db.session.commit()
    first_end = frozen_clock.now
    frozen_clock.advance(minutes=1)
    with write_intent():
        assert accounts.end_all_sessions(db.session, person) == 2
        db.session.commit()
    assert (_ended(ended_before), _ended(live_one), _ended(live_two), _ended(others)) == (
        first_end,
        frozen_clock.now,
        frozen_clock.now,
        None,
    )


# Changing a password --------------------------------------------------------------------------------------


def _change(person, current=PASSWORD, new=NEW_PASSWORD, keep=None):
    with write_intent():
        accounts.change_password(db.session, person, current=current, new=new, keep_session_id=keep)
        db.session.commit()


def test_changing_the_password_ends_every_other_session_and_is_audited(app, frozen_clock):
    person, other = make_user(), make_user()
    this, elsewhere, others = _start(person), _start(person), _start(other)
    frozen_clock.advance(minutes=1)
    _change(db.session.get(User, person.id), keep=this)
    assert passwords.check_password(db.session.get(User, person.id).password_hash, NEW_PASSWORD)
    assert (_ended(this), _ended(elsewhere), _ended(others)) == (None, frozen_clock.now, None)
    [event] = _events("user.password_changed")
    assert _subject(event) == (person.id, "user", str(person.id))


def test_changing_the_password_keeps_when_earlier_sessions_ended(app, frozen_clock):
    person = make_user()
    signed_out = _start(person)
    with write_intent():
        accounts.sign_out(db.session, db.session.get(User, person.id), signed_out)
        db.session.commit()
    ended_at = _ended(signed_out)
    frozen_clock.advance(hours=1)
    _change(db.session.get(User, person.id), keep=None)
    assert _ended(signed_out) == ended_at  # the record of when it ended is not rewritten


def test_changing_the_password_without_a_session_to_keep_ends_them_all(app):
    person = make_user()
    session_id = _start(person)
    _change(db.session.get(User, person.id), keep=None)
    assert _ended(session_id) is not None


def test_a_wrong_current_password_or_a_bad_new_one_changes_nothing(app):
    person = make_user()
    session_id = _start(person)
    before = person.password_hash
    with write_intent(), pytest.raises(ValidationFailed) as caught:
        accounts.change_password(db.session, person, current="wrong", new=NEW_PASSWORD, keep_session_id=None)
    db.session.rollback()
    assert str(caught.value) == "Your current password is not right."
    assert caught.value.field_errors == {"current_password": ["That is not your current password."]}
    with write_intent(), pytest.raises(ValidationFailed) as caught:
        accounts.change_password(db.session, person, current=PASSWORD, new="short", keep_session_id=None)
    db.session.rollback()
    problem = passwords.password_problem("short")
    assert str(caught.value) == problem and caught.value.field_errors == {"new_password": [problem]}
    assert db.session.get(User, person.id).password_hash == before and _ended(session_id) is None
    assert _events("user.password_changed") == []


# Set-password links -----------------------------------------------------------------------------------------


def _issue(person, purpose="invite", actor=None):
    with write_intent():
        token = accounts.issue_password_token(db.session, actor, person, purpose)
        db.session.commit()
    return token


def _link(token: str) -> PasswordToken:
    return db.session.scalar(sa.select(PasswordToken).where(PasswordToken.token_hash == sha256(token.encode()).hexdigest()))


def _set(token: str, password: str = NEW_PASSWORD) -> User:
    with write_intent():
        user = accounts.set_password_with_token(db.session, token, password)
        db.session.commit()
    return user


def test_a_link_is_stored_only_as_its_hash_and_lasts_seven_days(app, frozen_clock):
    person, admin = make_user(), make_user(Role.ADMIN)
    token = _issue(person, actor=admin)
    assert len(token) == 43
    link = _link(token)
    assert (link.user_id, link.expires_at, link.used_at) == (person.id, frozen_clock.now + timedelta(days=7), None)
    [event] = _events("user.invite_issued")
    assert _subject(event) == (admin.id, "user", str(person.id))
    assert _events("user.password_links_revoked") == []


def test_a_new_link_revokes_the_earlier_live_ones_and_says_so(app, frozen_clock):
    person, other = make_user(), make_user()
    first, second, others = _issue(person), _issue(person), _issue(other)
    frozen_clock.advance(minutes=1)
    third = _issue(person, "password_reset")
    db.session.expire_all()
    assert _link(first).expires_at < _link(second).expires_at == frozen_clock.now
    assert _link(third).expires_at == frozen_clock.now + timedelta(days=7)
    assert _link(others).expires_at > frozen_clock.now
    events = _events("user.password_links_revoked")
    assert [json.loads(event.details) for event in events] == [
        {"count": 1, "reason": "new_invite_link"},
        {"count": 1, "reason": "new_password_reset_link"},
    ]
    assert _subject(events[-1]) == (None, "user", str(person.id))
    assert accounts.find_password_token(db.session, first) is None
    assert accounts.find_password_token(db.session, third).user_id == person.id


def test_a_link_is_an_invitation_unless_said_otherwise_and_names_who_issued_it(app, frozen_clock):
    # The invitation and the staff import issue links without naming a purpose.
    person, admin = make_user(), make_user(Role.ADMIN)
    with write_intent():
        accounts.issue_password_token(db.session, admin, person)
        accounts.issue_password_token(db.session, admin, person)
        db.session.commit()
    assert [_subject(event) for event in _events("user.invite_issued")] == [(admin.id, "user", str(person.id))] * 2
    [revoked] = _events("user.password_links_revoked")
    assert _subject(revoked) == (admin.id, "user", str(person.id))
    assert json.loads(revoked.details) == {"count": 1, "reason": "new_invite_link"}


def test_a_used_or_expired_link_is_not_revoked_again(app, frozen_clock):
    person = make_user()
    used = _issue(person)
    _set(used)
    frozen_clock.advance(days=8)
    _issue(person)  # the used link has expired too by now: nothing left to revoke
    assert len(_events("user.password_links_revoked")) == 0


def test_the_live_links_are_the_persons_unused_unexpired_ones_in_id_order(app, frozen_clock):
    person, other = make_user(), make_user()
    now = frozen_clock.now
    with write_intent():
        rows = [
            PasswordToken(user_id=person.id, token_hash="a" * 64, expires_at=now + timedelta(seconds=1)),
            PasswordToken(user_id=person.id, token_hash="b" * 64, expires_at=now),
            PasswordToken(user_id=person.id, token_hash="c" * 64, expires_at=now + timedelta(days=1), used_at=now),
            PasswordToken(user_id=other.id, token_hash="d" * 64, expires_at=now + timedelta(days=1)),
            PasswordToken(user_id=person.id, token_hash="e" * 64, expires_at=now + timedelta(days=2)),
        ]
        db.session.add_all(rows)
        db.session.commit()
        live = accounts._live_password_links(db.session, person.id)
        assert [link.token_hash[0] for link in live] == ["a", "e"]
        assert accounts._revoke_password_links(db.session, person, person, [], "why") == 0
        assert accounts._revoke_password_links(db.session, person, person, live, "testing") == 2
        db.session.commit()
    assert [json.loads(event.details) for event in _events("user.password_links_revoked")] == [{"count": 2, "reason": "testing"}]
    assert _subject(_events("user.password_links_revoked")[0]) == (person.id, "user", str(person.id))


def test_a_password_reset_link_revokes_the_persons_api_tokens_and_an_invite_does_not(app):
    person = make_user()
    with write_intent():
        token, _secret = create_token(db.session, person, "MIS sync")
        db.session.commit()
    _issue(person, "invite")
    assert db.session.get(ApiToken, token.id).revoked_at is None
    admin = make_user(Role.ADMIN)
    _issue(person, "password_reset", actor=admin)
    assert db.session.get(ApiToken, token.id).revoked_at is not None
    assert json.loads(_events("api_token.revoked")[0].details) == {"reason": "password_reset"}
    assert _subject(_events("api_token.revoked")[0]) == (admin.id, "api_token", str(token.id))
    assert len(_events("user.password_reset_issued")) == 1


def test_a_link_is_found_until_the_moment_it_expires_and_never_once_used(app, frozen_clock):
    person = make_user()
    token = _issue(person)
    assert accounts.find_password_token(db.session, token).user_id == person.id
    assert accounts.find_password_token(db.session, token + "x") is None
    assert accounts.find_password_token(db.session, None) is None  # type: ignore[arg-type]
    frozen_clock.advance(days=7, seconds=-1)
    assert accounts.find_password_token(db.session, token) is not None
    frozen_clock.advance(seconds=1)
    assert accounts.find_password_token(db.session, token) is None


def test_a_link_for_the_empty_token_is_not_found(app, frozen_clock):
    person = make_user()
    with write_intent():
        db.session.add(
            PasswordToken(user_id=person.id, token_hash=sha256(b"").hexdigest(), expires_at=frozen_clock.now + timedelta(days=1))
        )
        db.session.commit()
    assert accounts.find_password_token(db.session, "").user_id == person.id  # the hash of "" is what is looked up
    assert accounts.find_password_token(db.session, None).user_id == person.id  # type: ignore[arg-type]


def test_setting_a_password_through_a_link_works_once_and_ends_sessions_and_other_links(app, frozen_clock):
    person = make_user()
    session_id = _start(person)
    link = _issue(person)
    with write_intent():
        # Two live links at once (as after a race): using one must end the other.
        db.session.add(
            PasswordToken(
                user_id=person.id, token_hash=sha256(b"other").hexdigest(), expires_at=frozen_clock.now + timedelta(days=1)
            )
        )
        db.session.commit()
    frozen_clock.advance(minutes=1)
    user = _set(link)
    assert user.id == person.id
    assert passwords.check_password(db.session.get(User, person.id).password_hash, NEW_PASSWORD)
    assert _link(link).used_at == frozen_clock.now and _ended(session_id) == frozen_clock.now
    assert accounts.find_password_token(db.session, "other") is None
    [event] = _events("user.password_set")
    assert _subject(event) == (person.id, "user", str(person.id))
    revoked = _events("user.password_links_revoked")
    assert json.loads(revoked[-1].details) == {"count": 1, "reason": "password_set"}
    assert _subject(revoked[-1]) == (person.id, "user", str(person.id))
    with write_intent(), pytest.raises(NotFound) as caught:
        accounts.set_password_with_token(db.session, link, "yet another passphrase")
    db.session.rollback()
    assert str(caught.value) == "This link has expired or has already been used. Ask the school's admin for a new one."


def test_a_link_used_by_another_request_while_this_one_waited_for_the_lock_is_refused(app, monkeypatch):
    # On PostgreSQL two requests can find the same live link; the second locks the person's links only after
    # the first has used it, and must then refuse it as used, not fail.
    person = make_user()
    token = _issue(person)
    real_live_links = accounts._live_password_links

    def used_meanwhile(session, user_id):
        session.execute(sa.update(PasswordToken).where(PasswordToken.user_id == user_id).values(used_at=accounts.utcnow()))
        return real_live_links(session, user_id)

    monkeypatch.setattr(accounts, "_live_password_links", used_meanwhile)
    with write_intent(), pytest.raises(NotFound) as caught:
        accounts.set_password_with_token(db.session, token, NEW_PASSWORD)
    db.session.rollback()
    assert str(caught.value) == "This link has expired or has already been used. Ask the school's admin for a new one."
    assert passwords.check_password(db.session.get(User, person.id).password_hash, PASSWORD)


def test_a_link_alone_revokes_nothing_else_when_set(app):
    person = make_user()
    _set(_issue(person))
    assert [json.loads(event.details)["reason"] for event in _events("user.password_links_revoked")] == []


def test_a_link_for_a_leaver_or_with_a_bad_password_sets_nothing(app):
    person = make_user()
    token = _issue(person)
    with write_intent(), pytest.raises(ValidationFailed) as caught:
        accounts.set_password_with_token(db.session, token, "short")
    db.session.rollback()
    problem = passwords.password_problem("short")
    assert str(caught.value) == problem and caught.value.field_errors == {"password": [problem]}
    assert _link(token).used_at is None
    with write_intent():
        accounts.deactivate_user(db.session, None, db.session.get(User, person.id))
        db.session.commit()
    with write_intent(), pytest.raises(NotFound) as caught:
        accounts.set_password_with_token(db.session, token, NEW_PASSWORD)
    db.session.rollback()
    assert str(caught.value) == "This account is not active."
    assert _link(token).used_at is None and passwords.check_password(db.session.get(User, person.id).password_hash, PASSWORD)


# Roles, leavers ---------------------------------------------------------------------------------------------


def _roles(person) -> set[Role]:
    db.session.expire_all()
    return db.session.get(User, person.id).roles


def test_roles_are_replaced_with_staff_always_kept_and_audited(app):
    admin, person = make_user(Role.ADMIN), make_user(Role.APPROVER)
    with write_intent():
        accounts.set_roles(db.session, admin, db.session.get(User, person.id), {Role.OFFICE, Role.GOVERNOR})
        db.session.commit()
    assert _roles(person) == {Role.STAFF, Role.OFFICE, Role.GOVERNOR}
    [event] = _events("user.roles_changed")
    assert _subject(event) == (admin.id, "user", str(person.id))
    assert json.loads(event.details) == {"from": ["approver", "staff"], "to": ["governor", "office", "staff"]}
    with write_intent():
        accounts.set_roles(db.session, admin, db.session.get(User, person.id), {Role.STAFF, Role.OFFICE, Role.GOVERNOR})
        accounts.set_roles(db.session, None, db.session.get(User, person.id), {Role.OFFICE, Role.GOVERNOR})
        db.session.commit()
    assert len(_events("user.roles_changed")) == 1, "no change, no event"


def test_an_admin_cannot_remove_their_own_admin_role_but_may_change_the_others(app):
    admin = make_user(Role.ADMIN)
    with write_intent(), pytest.raises(Conflict) as caught:
        accounts.set_roles(db.session, admin, admin, {Role.OFFICE})
    db.session.rollback()
    assert str(caught.value) == "You cannot remove your own admin role; ask another admin."
    assert _roles(admin) == {Role.STAFF, Role.ADMIN}
    with write_intent():
        admin = db.session.get(User, admin.id)
        accounts.set_roles(db.session, admin, admin, {Role.ADMIN, Role.OFFICE})
        other = make_user(Role.ADMIN)
        accounts.set_roles(db.session, admin, db.session.get(User, other.id), set())
        db.session.commit()
    assert _roles(admin) == {Role.STAFF, Role.ADMIN, Role.OFFICE}
    assert _roles(other) == {Role.STAFF}


def test_the_provisioning_system_may_remove_anyones_admin_role(app):
    admin = make_user(Role.ADMIN)
    with write_intent():
        accounts.set_roles(db.session, None, db.session.get(User, admin.id), set())
        db.session.commit()
    assert _roles(admin) == {Role.STAFF}


def test_a_leaver_is_kept_with_every_session_ended_and_the_reason_audited(app, frozen_clock):
    admin, person = make_user(Role.ADMIN), make_user()
    one, two = _start(person), _start(person)
    frozen_clock.advance(minutes=1)
    with write_intent():
        accounts.deactivate_user(db.session, admin, db.session.get(User, person.id), reason="end_date")
        db.session.commit()
    stored = db.session.get(User, person.id)
    assert (stored.is_active_account, stored.deactivated_at) == (False, frozen_clock.now)
    assert _ended(one) == _ended(two) == frozen_clock.now
    [event] = _events("user.deactivated")
    assert _subject(event) == (admin.id, "user", str(person.id))
    assert json.loads(event.details) == {"sessions_ended": 2, "reason": "end_date"}
    frozen_clock.advance(minutes=1)
    with write_intent():
        accounts.deactivate_user(db.session, admin, db.session.get(User, person.id), reason="again")
        db.session.commit()
    assert len(_events("user.deactivated")) == 1, "a leaver is not deactivated twice"
    assert db.session.get(User, person.id).deactivated_at == frozen_clock.now - timedelta(minutes=1)


def test_a_leaver_without_a_reason_has_none_in_the_audit(app):
    admin, person = make_user(Role.ADMIN), make_user()
    with write_intent():
        accounts.deactivate_user(db.session, admin, db.session.get(User, person.id))
        db.session.commit()
    assert json.loads(_events("user.deactivated")[0].details) == {"sessions_ended": 0}


def test_nobody_can_deactivate_their_own_account(app):
    admin = make_user(Role.ADMIN)
    with write_intent(), pytest.raises(Conflict) as caught:
        accounts.deactivate_user(db.session, admin, admin)
    db.session.rollback()
    assert str(caught.value) == "You cannot deactivate your own account."
    assert db.session.get(User, admin.id).is_active_account is True


def test_reactivating_clears_a_past_end_date_and_revokes_old_tokens(app, frozen_clock):
    admin, person = make_user(Role.ADMIN), make_user()
    with write_intent():
        token, _secret = create_token(db.session, person, "Old script")
        stored = db.session.get(User, person.id)
        stored.end_date = date(2026, 11, 24)
        accounts.deactivate_user(db.session, admin, stored)
        db.session.commit()
    with write_intent():
        accounts.reactivate_user(db.session, admin, db.session.get(User, person.id))
        db.session.commit()
    stored = db.session.get(User, person.id)
    assert (stored.is_active_account, stored.deactivated_at, stored.end_date) == (True, None, None)
    assert db.session.get(ApiToken, token.id).revoked_at == frozen_clock.now
    [event] = _events("user.reactivated")
    assert _subject(event) == (admin.id, "user", str(person.id))
    assert json.loads(event.details) == {"api_tokens_revoked": 1, "end_date_cleared": "2026-11-24"}
    # The token's own revocation names who reactivated the person and why.
    [revoked] = _events("api_token.revoked")
    assert _subject(revoked) == (admin.id, "api_token", str(token.id))
    assert json.loads(revoked.details) == {"reason": "reactivated"}


def test_reactivating_keeps_an_end_date_of_today_or_later(app):
    admin, person, later = make_user(Role.ADMIN), make_user(), make_user()
    with write_intent():
        for who, end in ((person, date(2026, 11, 25)), (later, date(2027, 7, 20))):
            stored = db.session.get(User, who.id)
            stored.end_date = end
            accounts.deactivate_user(db.session, admin, stored)
        db.session.commit()
    with write_intent():
        accounts.reactivate_user(db.session, admin, db.session.get(User, person.id))
        accounts.reactivate_user(db.session, admin, db.session.get(User, later.id))
        accounts.reactivate_user(db.session, admin, db.session.get(User, later.id))  # already active: nothing
        db.session.commit()
    assert db.session.get(User, person.id).end_date == date(2026, 11, 25)
    assert db.session.get(User, later.id).end_date == date(2027, 7, 20)
    assert [json.loads(event.details) for event in _events("user.reactivated")] == [{"api_tokens_revoked": 0}] * 2


# Where sign-in returns to -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/devices?page=2", "/devices?page=2"),
        ("/", "/"),
        (None, "/"),
        ("", "/"),
        ("https://evil.example/x", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("devices", "/"),
        ("javascript:alert(1)", "/"),
        ("http:/devices", "/"),
        ("///evil.example", "/"),
        # Browsers drop tabs and newlines from a URL, so these are //evil.example to them (and to urlsplit).
        ("/\t/evil.example/x", "/"),
        ("/\r\n/evil.example", "/"),
    ],
)
def test_sign_in_returns_only_to_a_path_on_this_site(app, target, expected):
    with app.test_request_context("/sign-in"):
        assert safe_next(target) == expected


def test_the_session_lookup_names_the_current_policy_version(app):
    from app.clock import local_today
    from app.services import policy

    review = local_today() + timedelta(days=365)
    admin = make_user(Role.ADMIN)
    person = make_user()
    session_id, person_id = _start(person), person.id
    with write_intent():
        first = policy.publish_policy(
            db.session,
            admin,
            policy.PolicyDraft(label="v1", title="Conduct", body="Phones stay out.", pdf=b"", review_date=review),
        )
        second = policy.publish_policy(
            db.session,
            admin,
            policy.PolicyDraft(label="v2", title="Conduct", body="Phones stay out, always.", pdf=b"", review_date=review),
        )
        db.session.commit()
    assert first.id < second.id
    live = accounts.live_session(db.session, person_id, session_id, timedelta(hours=12))
    assert live is not None and live.user.id == person_id
    assert live.current_policy_id == second.id


def test_a_person_with_no_role_rows_is_still_signed_in_holding_no_role(app):
    person = make_user()
    session_id, person_id = _start(person), person.id
    with write_intent():
        db.session.execute(sa.delete(UserRole).where(UserRole.user_id == person_id))
        db.session.commit()
    db.session.expire_all()
    live = accounts.live_session(db.session, person_id, session_id, timedelta(hours=12))
    assert live is not None
    assert live.user.roles == set()
    assert not live.user.has_role(Role.STAFF, Role.ADMIN)
