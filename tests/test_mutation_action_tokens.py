"""Action token rules pinned exactly: what is issued, every refusal's audit, the boundaries, the twin.

Written for mutation testing (issue 19): each assertion is one a changed comparison, message or audit
field in app/services/action_tokens.py would break. The handler stands in for the feature that decides.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.clock import utcnow
from app.database import write_intent
from app.extensions import db
from app.models import ActionToken, AuditEvent, Role
from app.services import action_tokens
from app.services.accounts import deactivate_user
from app.services.action_tokens import ActionRefused, issue_action_tokens, redeem
from tests.factories import make_user

SUBJECT = "mutation_subject"
LIFETIME = timedelta(minutes=60)


@pytest.fixture
def handled(app):
    """A registered handler and subject lock that record what they were asked."""
    calls: dict[str, list] = {"decided": [], "locked": []}

    def decide(session, approver, subject_id, action):
        calls["decided"].append((approver.id, subject_id, action))
        return f"{action}d {subject_id}"

    action_tokens.register_action_handler(SUBJECT, decide)
    action_tokens.register_subject_lock(SUBJECT, lambda session, subject_id: calls["locked"].append(subject_id))
    yield calls
    action_tokens.unregister_action_handler(SUBJECT)
    action_tokens._subject_locks.pop(SUBJECT, None)


def _issue(approver, subject_id: int = 42, subject_type: str = SUBJECT) -> dict[str, str]:
    with write_intent():
        tokens = issue_action_tokens(db.session, approver, subject_type, subject_id, LIFETIME)
        db.session.commit()
    return tokens


def _refused(token, action: str, presenter=None) -> str:
    with write_intent(), pytest.raises(ActionRefused) as caught:
        redeem(db.session, token, action, presenter=presenter)
    db.session.commit()
    return caught.value.message


def _redeem(token, action: str, presenter=None):
    with write_intent():
        result = redeem(db.session, token, action, presenter=presenter)
        db.session.commit()
    return result


def _last(action: str) -> AuditEvent:
    return db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq.desc()).limit(1))


def _refusal() -> tuple:
    event = _last("push.action_refused")
    return event.actor_id, event.subject_type, event.subject_id, json.loads(event.details)


def test_issuing_makes_one_approve_and_one_deny_token_for_the_approver(app, frozen_clock):
    head = make_user(Role.APPROVER)
    tokens = _issue(head, subject_id=7)
    assert set(tokens) == {"approve", "deny"} and tokens["approve"] != tokens["deny"]
    assert all(len(token) == 43 for token in tokens.values())
    stored = {row.action: row for row in db.session.scalars(sa.select(ActionToken))}
    assert set(stored) == {"approve", "deny"}
    for action, row in stored.items():
        assert row.token_hash == action_tokens.token_hash(tokens[action])
        assert (row.approver_id, row.subject_type, row.subject_id, row.used_at) == (head.id, SUBJECT, 7, None)
        assert row.expires_at == frozen_clock.now + LIFETIME


def test_the_handler_registry(app):
    def handler(session, approver, subject_id, action):
        return None

    assert not action_tokens.has_action_handler("registry_probe")
    assert action_tokens.action_handler_for("registry_probe") is None
    action_tokens.register_action_handler("registry_probe", handler)
    assert action_tokens.has_action_handler("registry_probe")
    assert action_tokens.action_handler_for("registry_probe") is handler
    action_tokens.unregister_action_handler("registry_probe")
    action_tokens.unregister_action_handler("registry_probe")  # twice is harmless
    assert not action_tokens.has_action_handler("registry_probe")


def test_a_redemption_locks_the_subject_decides_and_is_audited(handled, frozen_clock):
    head = make_user(Role.APPROVER)
    tokens = _issue(head, subject_id=42)
    result = _redeem(tokens["approve"], "approve", presenter=head)
    assert (result.approver.id, result.subject_type, result.subject_id, result.action, result.outcome) == (
        head.id,
        SUBJECT,
        42,
        "approve",
        "approved 42",
    )
    assert handled == {"decided": [(head.id, 42, "approve")], "locked": [42]}
    approve = db.session.scalar(sa.select(ActionToken).where(ActionToken.action == "approve"))
    event = _last("push.action_redeemed")
    assert (event.actor_id, event.subject_type, event.subject_id) == (head.id, SUBJECT, "42")
    assert json.loads(event.details) == {"action": "approve", "token_id": approve.id}
    assert approve.used_at == frozen_clock.now


def test_the_twin_dies_but_other_approvers_and_subjects_keep_theirs(handled):
    head, deputy = make_user(Role.APPROVER), make_user(Role.APPROVER)
    mine = _issue(head, subject_id=42)
    deputys = _issue(deputy, subject_id=42)
    my_other_subject = _issue(head, subject_id=43)
    _redeem(mine["deny"], "deny")
    assert _refused(mine["approve"], "approve") == "This button has already been used."
    assert _refusal() == (head.id, SUBJECT, "42", {"reason": "already_used", "action": "approve"})
    _redeem(deputys["approve"], "approve")
    _redeem(my_other_subject["approve"], "approve")
    assert handled["decided"] == [(head.id, 42, "deny"), (deputy.id, 42, "approve"), (head.id, 43, "approve")]


@pytest.mark.parametrize(
    "token, reason",
    [("x" * 19, "malformed"), ("x" * 101, "malformed"), (None, "malformed"), ("x" * 20, "unknown"), ("x" * 100, "unknown")],
)
def test_a_malformed_or_unknown_token_is_refused_without_naming_a_subject(handled, token, reason):
    assert _refused(token, "approve") == "This button is not valid."
    assert _refusal() == (None, "action_token", "", {"reason": reason, "action": "approve"})


def test_an_action_outside_approve_and_deny_is_audited_as_other(handled):
    head = make_user(Role.APPROVER)
    tokens = _issue(head)
    assert _refused(tokens["approve"], "delete everything") == "This button was made for a different decision."
    assert _refusal() == (head.id, SUBJECT, "42", {"reason": "wrong_action", "action": "other"})
    assert _refused("y" * 30, "deny") == "This button is not valid."
    assert _refusal()[3] == {"reason": "unknown", "action": "deny"}


def test_a_token_expires_at_its_expiry_instant(handled, frozen_clock):
    head = make_user(Role.APPROVER)
    tokens = _issue(head)
    frozen_clock.advance(minutes=60)
    assert _refused(tokens["approve"], "approve") == "This button has expired; open Lanyard to decide."
    assert _refusal() == (head.id, SUBJECT, "42", {"reason": "expired", "action": "approve"})
    frozen_clock.advance(minutes=-1)
    assert _redeem(tokens["approve"], "approve").outcome == "approved 42"


def test_someone_elses_session_and_a_leavers_token_are_refused(handled):
    head, deputy = make_user(Role.APPROVER), make_user(Role.APPROVER)
    tokens = _issue(head)
    assert _refused(tokens["approve"], "approve", presenter=deputy) == "This button was sent to someone else."
    assert _refusal() == (head.id, SUBJECT, "42", {"reason": "wrong_approver", "action": "approve"})
    with write_intent():
        deactivate_user(db.session, None, head)
        db.session.commit()
    assert _refused(tokens["approve"], "approve") == "This account can no longer decide."
    assert _refusal() == (head.id, SUBJECT, "42", {"reason": "approver_inactive", "action": "approve"})
    assert handled["decided"] == []


def test_a_subject_nobody_handles_is_refused_and_nothing_is_spent(app):
    head = make_user(Role.APPROVER)
    tokens = _issue(head, subject_type="nobody_handles_this")
    assert _refused(tokens["deny"], "deny") == "This kind of request cannot be decided from a notification."
    assert _refusal() == (head.id, "nobody_handles_this", "42", {"reason": "no_handler", "action": "deny"})
    assert db.session.scalar(sa.select(sa.func.count()).where(ActionToken.used_at.is_not(None))) == 0


def test_an_action_refusal_is_kept_and_named():
    assert ActionRefused.slug == "action-refused"
    assert ActionRefused.title == "This button can no longer decide"
    assert ActionRefused.keep_changes is True
    assert action_tokens.ACTIONS == ("approve", "deny")


def test_a_wrong_decision_names_the_decision_that_was_pressed(handled):
    head = make_user(Role.APPROVER)
    tokens = _issue(head)
    assert _refused(tokens["approve"], "deny") == "This button was made for a different decision."
    assert _refusal() == (head.id, SUBJECT, "42", {"reason": "wrong_action", "action": "deny"})
    assert handled["decided"] == []


def test_a_press_that_loses_the_race_after_the_checks_is_refused_and_decides_nothing(handled, monkeypatch):
    """The other press (here: the twin, on another connection) spends the tokens after this one's checks
    passed and before it spends its own: only the conditional spend can still refuse it."""
    head = make_user(Role.APPROVER)
    tokens = _issue(head)

    class OtherPressWins(dict):
        def get(self, subject_type, default=None):
            db.session.execute(
                sa.update(ActionToken).where(ActionToken.used_at.is_(None)).values(used_at=utcnow()),
                execution_options={"synchronize_session": False},
            )
            return super().get(subject_type, default)

    monkeypatch.setattr(action_tokens, "_handlers", OtherPressWins(action_tokens._handlers))
    assert _refused(tokens["approve"], "approve") == "This button has already been used."
    assert _refusal() == (head.id, SUBJECT, "42", {"reason": "already_used", "action": "approve"})
    assert handled["decided"] == []
    assert _last("push.action_redeemed") is None


def test_the_twin_that_dies_is_only_this_kind_of_subjects(handled):
    head = make_user(Role.APPROVER)
    mine = _issue(head, subject_id=42)
    _issue(head, subject_id=42, subject_type="other_subject")
    _redeem(mine["approve"], "approve")
    other_kind = db.session.scalars(sa.select(ActionToken).where(ActionToken.subject_type == "other_subject")).all()
    assert [token.used_at for token in other_kind] == [None, None]


def test_a_later_redemption_keeps_when_earlier_buttons_were_used(handled, frozen_clock):
    head = make_user(Role.APPROVER)
    first = _issue(head, subject_id=42)
    _redeem(first["deny"], "deny")
    used_first = frozen_clock.now
    frozen_clock.advance(minutes=10)
    second = _issue(head, subject_id=42)
    _redeem(second["approve"], "approve")
    stamps = {row.token_hash: row.used_at for row in db.session.scalars(sa.select(ActionToken))}
    assert stamps[action_tokens.token_hash(first["approve"])] == used_first
    assert stamps[action_tokens.token_hash(first["deny"])] == used_first
    assert stamps[action_tokens.token_hash(second["deny"])] == frozen_clock.now
