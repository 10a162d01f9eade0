"""One-time action tokens: they decide only their subject, only for their approver, only once, in time."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import ActionToken, AuditEvent, Role
from app.services import action_tokens
from app.services.action_tokens import ActionRefused, issue_action_tokens, redeem, register_action_handler
from app.services.errors import Conflict
from app.services.notifications import notify
from tests.factories import make_user, sign_in
from tests.push.conftest import drain, subscribe_browser

SUBJECT = "test_subject"
LIFETIME = timedelta(minutes=60)


@pytest.fixture
def decisions(app):
    """A stand-in for the permissions feature: it records each decision it is asked to make."""
    made: list[tuple[int, int, str]] = []

    def decide(session, approver, subject_id, action):
        if subject_id == 999:
            raise Conflict("Mrs A already approved this.")
        made.append((approver.id, subject_id, action))
        return {"message": "Approved until 14:20" if action == "approve" else "Denied"}

    register_action_handler(SUBJECT, decide)
    yield made
    action_tokens.unregister_action_handler(SUBJECT)


def _issue(approver, subject_id: int = 42) -> dict[str, str]:
    with write_intent():
        tokens = issue_action_tokens(db.session, approver, SUBJECT, subject_id, LIFETIME)
        db.session.commit()
    return tokens


def _redeem(token: str, action: str, presenter=None):
    with write_intent():
        try:
            result = redeem(db.session, token, action, presenter=presenter)
        except ActionRefused:
            db.session.commit()  # the audited refusal is kept, as the API does
            raise
        db.session.commit()
    return result


def _refusals() -> list[str]:
    import json

    return [
        json.loads(e.details)["reason"]
        for e in db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "push.action_refused").order_by(AuditEvent.seq)
        )
    ]


def test_only_the_hash_is_stored(decisions):
    head = make_user(Role.APPROVER)
    tokens = _issue(head)
    stored = set(db.session.scalars(sa.select(ActionToken.token_hash)))
    assert stored == {action_tokens.token_hash(t) for t in tokens.values()}
    assert not stored & set(tokens.values())


def test_a_good_token_decides_exactly_once(decisions):
    head = make_user(Role.APPROVER)
    tokens = _issue(head)

    result = _redeem(tokens["approve"], "approve")

    assert decisions == [(head.id, 42, "approve")]
    assert result.outcome == {"message": "Approved until 14:20"}
    with pytest.raises(ActionRefused):
        _redeem(tokens["approve"], "approve")
    with pytest.raises(ActionRefused):  # its twin died with it: one decision per approver
        _redeem(tokens["deny"], "deny")
    assert decisions == [(head.id, 42, "approve")]
    assert _refusals() == ["already_used", "already_used"]
    assert db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "push.action_redeemed")).actor_id == head.id


def test_a_token_presented_by_someone_else_is_refused(decisions):
    head = make_user(Role.APPROVER)
    deputy = make_user(Role.APPROVER)
    tokens = _issue(head)
    with pytest.raises(ActionRefused, match="someone else"):
        _redeem(tokens["approve"], "approve", presenter=deputy)
    assert decisions == [] and _refusals() == ["wrong_approver"]
    assert db.session.scalar(sa.select(sa.func.count()).where(ActionToken.used_at.is_not(None))) == 0


def test_an_expired_token_is_refused(decisions, frozen_clock):
    head = make_user(Role.APPROVER)
    tokens = _issue(head)
    frozen_clock.advance(minutes=61)
    with pytest.raises(ActionRefused, match="expired"):
        _redeem(tokens["approve"], "approve")
    assert decisions == [] and _refusals() == ["expired"]


@pytest.mark.parametrize(
    "tamper", [lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), lambda t: t + "x", lambda t: "x" * 5, lambda t: t.upper()]
)
def test_a_tampered_token_is_refused(decisions, tamper):
    head = make_user(Role.APPROVER)
    tokens = _issue(head)
    with pytest.raises(ActionRefused):
        _redeem(tamper(tokens["approve"]), "approve")
    assert decisions == []
    assert _refusals()[0] in {"unknown", "malformed"}


def test_a_token_is_only_good_for_its_own_action(decisions):
    head = make_user(Role.APPROVER)
    tokens = _issue(head)
    with pytest.raises(ActionRefused, match="different decision"):
        _redeem(tokens["approve"], "deny")
    assert decisions == []
    _redeem(tokens["deny"], "deny")
    assert decisions == [(head.id, 42, "deny")]


def test_a_deactivated_approver_cannot_decide(decisions):
    from app.services.accounts import deactivate_user

    admin = make_user(Role.ADMIN)
    head = make_user(Role.APPROVER)
    tokens = _issue(head)
    with write_intent():
        deactivate_user(db.session, admin, head)
        db.session.commit()
    with pytest.raises(ActionRefused):
        _redeem(tokens["approve"], "approve")
    assert decisions == [] and _refusals() == ["approver_inactive"]


def test_a_refusal_by_the_handler_spends_nothing(decisions):
    head = make_user(Role.APPROVER)
    tokens = _issue(head, subject_id=999)
    with write_intent(), pytest.raises(Conflict):
        redeem(db.session, tokens["approve"], "approve")
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).where(ActionToken.used_at.is_not(None))) == 0


# Through the API, as the service worker calls it


def test_the_service_worker_decides_without_a_session_or_csrf_token(decisions, client):
    head = make_user(Role.APPROVER)
    tokens = _issue(head)
    response = client.post("/api/v1/push-actions", json={"token": tokens["approve"], "action": "approve"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {
        "subject_type": SUBJECT,
        "subject_id": 42,
        "action": "approve",
        "message": "Approved until 14:20",
    }
    assert decisions == [(head.id, 42, "approve")]

    again = client.post("/api/v1/push-actions", json={"token": tokens["approve"], "action": "approve"})
    assert again.status_code == 403
    assert again.mimetype == "application/problem+json"
    assert again.get_json()["detail"] == "This button has already been used."
    assert decisions == [(head.id, 42, "approve")]
    assert _refusals() == ["already_used"]  # the refusal is committed even though the request failed


def test_the_api_refuses_a_token_under_someone_elses_session(decisions, client):
    head = make_user(Role.APPROVER)
    deputy = make_user(Role.APPROVER)
    tokens = _issue(head)
    sign_in(client, deputy)
    response = client.post("/api/v1/push-actions", json={"token": tokens["approve"], "action": "approve"})
    assert response.status_code == 403 and response.get_json()["type"] == "urn:lanyard:problem:action-refused"
    assert decisions == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({"token": "abc"}, "action"),
        ({"token": "a" * 40, "action": "maybe"}, "action"),
        ({"token": 5, "action": "approve"}, "token"),
        ({"token": "a" * 40, "action": "approve", "who": 1}, "who"),
    ],
)
def test_the_api_says_what_is_wrong_with_a_body(decisions, client, body, field):
    response = client.post("/api/v1/push-actions", json=body)
    assert response.status_code == 422 and field in response.get_json()["errors"]
    assert decisions == []


def test_a_handler_conflict_is_a_problem_with_its_message(decisions, client):
    head = make_user(Role.APPROVER)
    tokens = _issue(head, subject_id=999)
    response = client.post("/api/v1/push-actions", json={"token": tokens["approve"], "action": "approve"})
    assert response.status_code == 409 and response.get_json()["detail"] == "Mrs A already approved this."


# From notify() to the push: tokens only for approvers of an actionable kind


def test_a_permission_request_push_carries_tokens_for_approvers_only(decisions, push_service, sender_settings, client):
    real_handler = action_tokens.action_handler_for("permission_request")
    action_tokens.register_action_handler("permission_request", lambda s, a, i, act: decisions.append((a.id, i, act)))
    try:
        head = make_user(Role.APPROVER)
        colleague = make_user(Role.STAFF)
        subscribe_browser(push_service, head)
        subscribe_browser(push_service, colleague)
        with write_intent():
            notify(
                db.session,
                [head, colleague],
                kind="permission.requested",
                title="Mr B: iPhone 13 into Year 3 until 14:20",
                body="Expecting an urgent call",
                url="/approvals/7",
                extra={"kind": "permission.requested", "request_id": 7},
            )
            db.session.commit()
        drain(sender_settings)
        by_endpoint = {d.endpoint: d for d in push_service.deliveries}
        assert len(by_endpoint) == 2
        head_push = next(d for d in by_endpoint.values() if "actions" in d.message)
        other_push = next(d for d in by_endpoint.values() if "actions" not in d.message)
        assert head_push.message["request_id"] == 7 and head_push.headers["urgency"] == "high"
        assert other_push.headers["urgency"] == "normal" and other_push.message["request_id"] == 7
        assert int(head_push.headers["ttl"]) <= 3600 and head_push.headers["topic"] == "permission_request-7"

        response = client.post(
            "/api/v1/push-actions", json={"token": head_push.message["actions"]["approve"], "action": "approve"}
        )
        assert response.status_code == 200
        assert decisions == [(head.id, 7, "approve")]
        # Once delivered, the outbox no longer holds the token in the clear.
        from app.models import PushOutbox

        assert all(head_push.message["actions"]["approve"] not in p for p in db.session.scalars(sa.select(PushOutbox.payload)))
    finally:
        action_tokens.register_action_handler("permission_request", real_handler)


def test_the_head_approves_a_real_request_from_the_push(push_service, sender_settings, client):
    """J3 through the permissions service: the push's Approve token decides the request, once."""
    from app.models import PermissionRequest
    from tests.factories import make_device
    from tests.permission_factories import ask, make_area

    admin = make_user(Role.ADMIN)
    head = make_user(Role.APPROVER, name="Mrs A Adeyemi")
    deputy = make_user(Role.APPROVER, name="Mr D Okafor")
    teacher = make_user(Role.STAFF, name="Mr B Clarke")
    subscribe_browser(push_service, head)
    subscribe_browser(push_service, deputy)
    request = ask(teacher, make_area(admin, "Year 3"), make_device(teacher, make="Apple", model="iPhone 13"))

    drain(sender_settings)
    pushes = {d.message["title"]: d for d in push_service.deliveries}
    assert len(push_service.deliveries) == 2 and len(pushes) == 1
    [title] = pushes
    assert title.startswith("Mr B Clarke: Apple iPhone 13 into Year 3 until ")
    by_approver = {d.endpoint: d.message for d in push_service.deliveries}
    head_message, deputy_message = (m for m in by_approver.values())
    assert head_message["request_id"] == request.id and head_message["url"] == f"/approvals/{request.id}"

    first = client.post("/api/v1/push-actions", json={"token": head_message["actions"]["approve"], "action": "approve"})
    assert first.status_code == 200 and first.get_json()["message"].startswith("Approved until ")
    second = client.post("/api/v1/push-actions", json={"token": deputy_message["actions"]["deny"], "action": "deny"})
    assert second.status_code == 409 and "already approved this" in second.get_json()["detail"]
    decided = db.session.get(PermissionRequest, request.id)
    assert decided.status == "approved" and decided.decided_by_id in {head.id, deputy.id}
