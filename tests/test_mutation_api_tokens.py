"""API token service rules pinned exactly: names, the limit, ownership, revocation and hourly use audit.

Written for mutation testing (issue 19): each assertion is one a changed comparison, message or audit
field in app/services/api_tokens.py would break.
"""

from __future__ import annotations

import json
from hashlib import sha256

import pytest
import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import ApiToken, AuditEvent, AuditLink
from app.services import accounts
from app.services.api_tokens import (
    MAX_ACTIVE_TOKENS,
    create_token,
    note_token_use,
    revoke_all_tokens,
    revoke_token,
    tokens_of,
    user_for_token,
)
from app.services.errors import NotFound, ValidationFailed
from tests.factories import make_user


def _create(owner, name="MIS sync"):
    with write_intent():
        token, secret = create_token(db.session, owner, name)
        db.session.commit()
    return token, secret


def _last_event() -> AuditEvent:
    return db.session.scalar(sa.select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def test_a_new_token_is_stored_hashed_with_its_prefix_and_audited(app, frozen_clock):
    owner = make_user()
    token, secret = _create(owner, "  MIS sync  ")
    assert secret.startswith("lny_") and len(secret) == 4 + 43
    stored = db.session.get(ApiToken, token.id)
    assert (stored.user_id, stored.name, stored.prefix) == (owner.id, "MIS sync", secret[:10])
    assert stored.token_hash == sha256(secret.encode()).hexdigest()
    event = _last_event()
    assert (event.action, event.actor_id, event.subject_type, event.subject_id) == (
        "api_token.created",
        owner.id,
        "api_token",
        str(token.id),
    )
    assert json.loads(event.details) == {"name": "MIS sync"}


@pytest.mark.parametrize("name", [None, "", "   ", "x" * 81])
def test_a_token_needs_a_name_of_up_to_80_characters(app, name):
    owner = make_user()
    with write_intent(), pytest.raises(ValidationFailed) as caught:
        create_token(db.session, owner, name)
    assert caught.value.message == "Name the token."
    assert caught.value.field_errors == {"name": ["Give it a name up to 80 characters, like 'MIS sync'."]}


def test_a_name_of_exactly_80_characters_is_kept(app):
    token, _ = _create(make_user(), "x" * 80)
    assert db.session.get(ApiToken, token.id).name == "x" * 80


def test_the_limit_counts_only_the_owners_live_tokens(app):
    owner, other = make_user(), make_user()
    for n in range(MAX_ACTIVE_TOKENS):
        _create(other, f"other {n}")
    first, _ = _create(owner, "first")
    for n in range(MAX_ACTIVE_TOKENS - 1):
        _create(owner, f"mine {n}")
    with write_intent():
        revoke_token(db.session, owner, first.id)
        db.session.commit()
    _create(owner, "after a revocation")  # nine live, so a tenth is allowed
    with write_intent(), pytest.raises(ValidationFailed) as caught:
        create_token(db.session, owner, "one too many")
    assert caught.value.message == "Too many tokens."
    assert caught.value.field_errors == {"name": [f"You can have {MAX_ACTIVE_TOKENS} tokens; revoke one first."]}
    assert MAX_ACTIVE_TOKENS == 10


def test_tokens_of_lists_only_the_owners_newest_first(app):
    owner, other = make_user(), make_user()
    older, _ = _create(owner, "older")
    _create(other, "theirs")
    newer, _ = _create(owner, "newer")
    assert [token.id for token in tokens_of(db.session, owner)] == [newer.id, older.id]


def test_revoking_is_for_the_owner_only_and_audited_once(app, frozen_clock):
    owner, other = make_user(), make_user()
    token, _ = _create(owner)
    with write_intent(), pytest.raises(NotFound) as caught:
        revoke_token(db.session, other, token.id)
    assert caught.value.message == "There is no such token."
    with write_intent(), pytest.raises(NotFound):
        revoke_token(db.session, owner, token.id + 1000)
    db.session.rollback()
    revoked_at = frozen_clock.now
    with write_intent():
        assert revoke_token(db.session, owner, token.id).id == token.id
        db.session.commit()
    frozen_clock.advance(minutes=5)
    with write_intent():
        revoke_token(db.session, owner, token.id)
        db.session.commit()
    assert db.session.get(ApiToken, token.id).revoked_at == revoked_at
    events = _events("api_token.revoked")
    assert [(e.actor_id, e.subject_type, e.subject_id) for e in events] == [(owner.id, "api_token", str(token.id))]


def test_revoking_all_of_a_persons_tokens_spares_everyone_else_and_says_why(app, frozen_clock):
    admin, owner, other = make_user(), make_user(), make_user()
    first, _ = _create(owner, "first")
    second, _ = _create(owner, "second")
    already, _ = _create(owner, "already")
    theirs, _ = _create(other, "theirs")
    with write_intent():
        revoke_token(db.session, owner, already.id)
        db.session.commit()
    frozen_clock.advance(minutes=1)
    with write_intent():
        assert revoke_all_tokens(db.session, admin, owner, "password_reset") == 2
        db.session.commit()
    assert db.session.get(ApiToken, first.id).revoked_at == frozen_clock.now
    assert db.session.get(ApiToken, second.id).revoked_at == frozen_clock.now
    assert db.session.get(ApiToken, already.id).revoked_at < frozen_clock.now
    assert db.session.get(ApiToken, theirs.id).revoked_at is None
    events = _events("api_token.revoked")[1:]
    assert [(e.actor_id, e.subject_type, e.subject_id) for e in events] == [
        (admin.id, "api_token", str(first.id)),
        (admin.id, "api_token", str(second.id)),
    ]
    assert all(json.loads(e.details) == {"reason": "password_reset"} for e in events)
    links = {(link.kind, link.ref) for link in db.session.scalars(sa.select(AuditLink).where(AuditLink.seq == events[0].seq))}
    assert ("user", str(owner.id)) in links


def _use(secret):
    """Authenticate as the app does: look the token up (a read), then record a due use under the write lock."""
    found = user_for_token(db.session, secret)
    if found is None:
        db.session.rollback()
        return None
    user, token, due = found
    if due:
        with write_intent():
            db.session.rollback()
            recorded = note_token_use(db.session, token, user)
            db.session.commit()
        return (user, token, recorded) if recorded is not None else None
    db.session.rollback()
    return user, token, False


def test_a_bearer_token_finds_its_active_owner_and_audits_use_hourly(app, frozen_clock):
    owner = make_user()
    token, secret = _create(owner)
    user, found, recorded = _use(secret)
    assert (user.id, found.id, recorded) == (owner.id, token.id, True)
    assert db.session.get(ApiToken, token.id).last_used_at == frozen_clock.now
    event = _last_event()
    assert (event.action, event.actor_id, event.subject_type, event.subject_id) == (
        "api_token.used",
        owner.id,
        "api_token",
        str(token.id),
    )
    frozen_clock.advance(minutes=59)
    assert _use(secret)[2] is False
    frozen_clock.advance(minutes=1)  # exactly an hour after the recorded use
    assert _use(secret)[2] is True
    assert db.session.get(ApiToken, token.id).last_used_at == frozen_clock.now
    assert len(_events("api_token.used")) == 2


def test_unknown_revoked_unprefixed_and_leavers_tokens_find_nobody(app):
    owner, leaver = make_user(), make_user()
    token, secret = _create(owner)
    _, leavers_secret = _create(leaver)
    assert _use("lny_" + "A" * 43) is None
    assert _use(secret[4:]) is None
    assert _use(secret.replace("lny_", "xyz_")) is None
    with write_intent():
        accounts.deactivate_user(db.session, None, leaver)
        db.session.commit()
    assert _use(leavers_secret) is None
    assert _use(secret) is not None
    with write_intent():
        revoke_token(db.session, owner, token.id)
        db.session.commit()
    assert _use(secret) is None


def test_a_leavers_token_is_refused_at_look_up_not_only_when_its_use_is_recorded(app):
    leaver = make_user()
    _, secret = _create(leaver)
    with write_intent():
        accounts.deactivate_user(db.session, None, leaver)
        db.session.commit()
    assert user_for_token(db.session, secret) is None


def test_recording_a_use_decides_again_under_the_write_lock(app, frozen_clock):
    owner = make_user()
    token, secret = _create(owner)
    user, found, due = user_for_token(db.session, secret)
    assert due is True
    with write_intent():
        db.session.rollback()
        assert note_token_use(db.session, found, user) is True
        assert note_token_use(db.session, found, user) is False  # recorded meanwhile: not due again
        db.session.commit()
    frozen_clock.advance(hours=1)
    user, found, _due = user_for_token(db.session, secret)
    with write_intent():
        db.session.rollback()
        accounts.deactivate_user(db.session, None, db.session.get(type(user), user.id))
        assert note_token_use(db.session, found, db.session.get(type(user), user.id)) is None  # left meanwhile
        db.session.rollback()
    with write_intent():
        revoke_token(db.session, owner, token.id)
        assert note_token_use(db.session, found, db.session.get(type(user), user.id)) is None  # revoked meanwhile
        db.session.rollback()
    assert len(_events("api_token.used")) == 1
