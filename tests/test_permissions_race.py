"""Two approvers tap at the same moment: exactly one decision, one audit event, the other told who decided."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, PermissionRequest, Role, User
from app.services import permissions
from app.services.action_tokens import issue_action_tokens
from app.services.audit import verify_chain
from app.services.errors import Conflict
from tests.conftest import csrf_token
from tests.factories import make_device, make_user, sign_in
from tests.permission_factories import Browser, ask, make_area
from tests.races import race

ROUNDS = 20
DECISION_ACTIONS = ("permission.approved", "permission.denied")


def _decision_events(request_id: int) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            sa.select(AuditEvent).where(
                AuditEvent.subject_type == "permission_request",
                AuditEvent.subject_id == str(request_id),
                AuditEvent.action.in_(DECISION_ACTIONS),
            )
        )
    )


def _race(*targets) -> None:
    race(targets, start_within=10, finish_within=30)


def _decide_in_own_request(app, approver_id: int, request_id: int, decision: str, outcomes: dict[int, str]) -> None:
    """What one approver's request does: its own app context, session and write transaction."""
    with app.app_context():
        try:
            with write_intent():
                approver = db.session.get(User, approver_id)
                try:
                    permissions.decide(db.session, approver, request_id, decision, note="tapped")
                    db.session.commit()
                    outcomes[approver_id] = "decided"
                except Conflict as error:
                    db.session.rollback()
                    outcomes[approver_id] = error.message
        finally:
            db.session.remove()


def test_two_approvers_deciding_at_once_record_exactly_one_decision(app):
    head = make_user(Role.APPROVER, name="Mrs A Adeyemi")
    deputy = make_user(Role.APPROVER, name="Mr D Okafor")
    admin = make_user(Role.ADMIN)
    staff = make_user(name="Mr B Clarke")
    phone = make_device(staff)
    area = make_area(admin)
    head_id, deputy_id = head.id, deputy.id  # threads must not touch the main thread's objects
    names = {head_id: head.display_name, deputy_id: deputy.display_name}

    for _round in range(ROUNDS):
        asked_id = ask(staff, area, phone).id
        db.session.rollback()
        outcomes: dict[int, str] = {}
        _race(
            partial(_decide_in_own_request, app, head_id, asked_id, "approve", outcomes),
            partial(_decide_in_own_request, app, deputy_id, asked_id, "deny", outcomes),
        )
        winners = [who for who, outcome in outcomes.items() if outcome == "decided"]
        assert len(winners) == 1, outcomes
        (loser,) = set(outcomes) - set(winners)
        assert outcomes[loser].startswith(f"{names[winners[0]]} already "), outcomes[loser]

        db.session.rollback()
        stored = db.session.get(PermissionRequest, asked_id)
        assert stored.decided_by_id == winners[0]
        assert stored.status == ("approved" if winners[0] == head_id else "denied")
        events = _decision_events(asked_id)
        assert len(events) == 1
        assert events[0].actor_id == winners[0]

    report = verify_chain(db.session)
    assert report.ok, report.problem


def _post_decision(clients: dict, who: int, request_id: int, responses: dict) -> None:
    """One approver's phone taps Approve (an HTTP request through the API, in a thread of its own)."""
    client, token = clients[who]
    responses[who] = client.post(
        f"/api/v1/permission-requests/{request_id}/decision", json={"decision": "approve"}, headers={"X-CSRFToken": token}
    )


def test_two_approvers_racing_through_the_api_one_gets_409(app):
    head = make_user(Role.APPROVER, name="Mrs A Adeyemi")
    deputy = make_user(Role.APPROVER, name="Mr D Okafor")
    admin = make_user(Role.ADMIN)
    staff = make_user(name="Mr B Clarke")
    phone = make_device(staff)
    area = make_area(admin)
    clients = {}
    for approver in (head, deputy):
        client = Browser(app)
        sign_in(client, approver)
        clients[approver.id] = (client, csrf_token(client, "/approvals"))
    head_id, deputy_id = head.id, deputy.id

    for _round in range(5):
        asked_id = ask(staff, area, phone).id
        db.session.rollback()
        responses: dict[int, object] = {}
        _race(*(partial(_post_decision, clients, who, asked_id, responses) for who in (head_id, deputy_id)))
        statuses = sorted(r.status_code for r in responses.values())
        assert statuses == [200, 409], [r.get_data(as_text=True) for r in responses.values()]
        winner = next(who for who, r in responses.items() if r.status_code == 200)
        loser = next(r for r in responses.values() if r.status_code == 409)
        assert loser.mimetype == "application/problem+json"
        assert loser.get_json()["detail"].startswith(f"{responses[winner].get_json()['decided_by']['name']} already approved")
        db.session.rollback()
        assert len(_decision_events(asked_id)) == 1

    assert verify_chain(db.session).ok


# Thirty deciders over the three paths: a notification's Approve (action token), the inbox form, the API.

APPROVERS = 10
RACE_REQUESTS = 3


def _push_approve(client, token: str, answers: list) -> None:
    """A lock screen's Approve: no session, the one-time token is the credential."""
    response = client.post("/api/v1/push-actions", json={"token": token, "action": "approve"})
    answers.append(("push", response.status_code, response.mimetype, response.get_json(silent=True) or {}))


def _api_approve(browser: Browser, csrf: str, request_id: int, answers: list) -> None:
    response = browser.post(
        f"/api/v1/permission-requests/{request_id}/decision", json={"decision": "approve"}, headers={"X-CSRFToken": csrf}
    )
    answers.append(("api", response.status_code, response.mimetype, response.get_json(silent=True) or {}))


def _inbox_approve(browser: Browser, csrf: str, request_id: int, answers: list) -> None:
    """The inbox form: it answers with a redirect to the inbox, whose flash says what happened."""
    response = browser.post(f"/approvals/{request_id}/decision", data={"csrf_token": csrf, f"r{request_id}-decision": "approve"})
    flashed = ""
    if response.status_code == 302:
        page = browser.get(response.headers["Location"]).get_data(as_text=True)
        flashed = (
            "decided" if "Approved: Mr B Clarke" in page else ("already" if " already approved this at " in page else page[:300])
        )
    answers.append(("inbox", response.status_code, flashed, {}))


def test_thirty_deciders_over_push_inbox_and_api_decide_once_with_no_server_error(app):
    """One lock order everywhere (the request row, then action tokens, then the audit append): no deadlock."""
    approvers = [make_user(Role.APPROVER, name=f"Approver {n}") for n in range(APPROVERS)]
    admin = make_user(Role.ADMIN)
    staff = make_user(name="Mr B Clarke")
    phone = make_device(staff)
    area = make_area(admin)
    inbox_clients, api_clients = [], []
    for approver in approvers:
        inbox, api = Browser(app), Browser(app)
        sign_in(inbox, approver)
        sign_in(api, approver)
        inbox_clients.append((inbox, csrf_token(inbox, "/approvals")))
        api_clients.append((api, csrf_token(api, "/approvals")))
    push_clients = [Browser(app) for _ in approvers]

    for _round in range(RACE_REQUESTS):
        asked_id = ask(staff, area, phone).id
        db.session.rollback()
        with write_intent():
            tokens = [
                issue_action_tokens(db.session, db.session.get(User, a.id), "permission_request", asked_id, timedelta(hours=1))[
                    "approve"
                ]
                for a in approvers
            ]
            db.session.commit()
        answers: list[tuple] = []
        deciders = []
        for n in range(APPROVERS):
            deciders.append(partial(_push_approve, push_clients[n], tokens[n], answers))
            deciders.append(partial(_inbox_approve, *inbox_clients[n], asked_id, answers))
            deciders.append(partial(_api_approve, *api_clients[n], asked_id, answers))
        _race(*deciders)

        assert len(answers) == 3 * APPROVERS
        assert not [a for a in answers if a[1] >= 500], answers
        won = [a for a in answers if (a[0] != "inbox" and a[1] == 200) or (a[0] == "inbox" and a[2] == "decided")]
        assert len(won) == 1, answers
        for path, status, kind, body in answers:
            if (path, status, kind, body) == won[0]:
                continue
            if path == "inbox":
                assert (status, kind) == (302, "already"), (status, kind)
            else:
                assert (status, kind) == (409, "application/problem+json"), (path, status, kind, body)
                assert " already approved this at " in body["detail"], body
        db.session.rollback()
        stored = db.session.get(PermissionRequest, asked_id)
        assert stored.status == "approved" and stored.decided_by_id in {a.id for a in approvers}
        assert len(_decision_events(asked_id)) == 1

    assert verify_chain(db.session).ok


def _clash(backend_name: str) -> sa.exc.OperationalError:
    """What each database raises when a writer clashes with another: PostgreSQL's deadlock, SQLite still locked."""
    if backend_name == "postgresql":
        import psycopg

        return sa.exc.OperationalError("SELECT ... FOR UPDATE", {}, psycopg.errors.DeadlockDetected("deadlock detected"))
    import sqlite3

    return sa.exc.OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))


def test_a_deadlock_or_a_locked_database_is_a_503_to_retry_and_changes_nothing(app, monkeypatch):
    """Whatever path still clashes with another writer answers 'try again' (503, Retry-After), never a 500."""
    head = make_user(Role.APPROVER, name="Mrs A Adeyemi")
    admin = make_user(Role.ADMIN)
    staff = make_user(name="Mr B Clarke")
    area = make_area(admin)
    asked_id = ask(staff, area, make_device(staff)).id
    backend_name = db.engine.dialect.name
    real_decide = permissions.decide

    def decide_then_clash(session, *args, **kwargs):
        real_decide(session, *args, **kwargs)  # the change is made, then the database gives up on it
        raise _clash(backend_name)

    monkeypatch.setattr(permissions, "decide", decide_then_clash)
    browser = Browser(app)
    sign_in(browser, head)
    token = csrf_token(browser, "/approvals")

    api = browser.post(
        f"/api/v1/permission-requests/{asked_id}/decision", json={"decision": "approve"}, headers={"X-CSRFToken": token}
    )
    assert api.status_code == 503 and api.mimetype == "application/problem+json"
    assert api.headers["Retry-After"] == "1" and api.get_json()["type"] == "urn:lanyard:problem:retry"
    assert "nothing was changed" in api.get_json()["detail"]

    page = browser.post(f"/approvals/{asked_id}/decision", data={"csrf_token": token, f"r{asked_id}-decision": "approve"})
    assert page.status_code == 503 and page.mimetype == "text/html" and page.headers["Retry-After"] == "1"
    assert "Please try again." in page.get_data(as_text=True)

    db.session.rollback()
    stored = db.session.get(PermissionRequest, asked_id)
    assert stored.status == "pending" and stored.decided_by_id is None
    assert _decision_events(asked_id) == []
    monkeypatch.setattr(permissions, "decide", real_decide)
    again = browser.post(
        f"/api/v1/permission-requests/{asked_id}/decision", json={"decision": "approve"}, headers={"X-CSRFToken": token}
    )
    assert again.status_code == 200 and again.get_json()["status"] == "approved"


def test_one_approver_pressing_approve_and_deny_at_once_decides_once(app):
    """The twin tokens are locked in id order after the request row, so two presses never deadlock."""
    head = make_user(Role.APPROVER, name="Mrs A Adeyemi")
    admin = make_user(Role.ADMIN)
    staff = make_user(name="Mr B Clarke")
    phone = make_device(staff)
    area = make_area(admin)
    phones = [Browser(app), Browser(app)]
    for _round in range(5):
        asked_id = ask(staff, area, phone).id
        db.session.rollback()
        with write_intent():
            tokens = issue_action_tokens(
                db.session, db.session.get(User, head.id), "permission_request", asked_id, timedelta(hours=1)
            )
            db.session.commit()
        answers: list = []

        def press(browser, action: str, answers=answers, tokens=tokens) -> None:
            response = browser.post("/api/v1/push-actions", json={"token": tokens[action], "action": action})
            answers.append((response.status_code, response.get_json(silent=True) or {}))

        _race(partial(press, phones[0], "approve"), partial(press, phones[1], "deny"))
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200, 403], answers
        assert next(body for status, body in answers if status == 403)["detail"] == "This button has already been used."
        db.session.rollback()
        assert len(_decision_events(asked_id)) == 1
    assert verify_chain(db.session).ok
