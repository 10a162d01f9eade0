"""Deciding pinned exactly: who may decide, one decision per request, the end time, the review of an
emergency override, withdrawing and ending, and what each leaves in the audit log and the requester's inbox.

Written for mutation testing (issue 19): each assertion is one that a changed comparison, message or audit
field in app/services/permissions/deciding.py would break. Direct service calls, SQLite, no pages.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, AuditLink, Notification, PermissionRequest, RequestStatus
from app.services import permissions
from app.services.accounts import deactivate_user
from app.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.services.permissions import deciding
from tests.factories import make_device
from tests.permission_factories import EMERGENCY, NINE, ask, committed, fresh, make_area, make_school


@pytest.fixture
def school(app, frozen_clock):
    return make_school()


@pytest.fixture
def extras(monkeypatch):
    """The ``extra`` each notice carried to the push and mail channels, by kind."""
    sent: dict[str, list[dict]] = {}
    real_notify = deciding.notify

    def notify(session, people, **notice):
        sent.setdefault(notice["kind"], []).append(notice.get("extra"))
        return real_notify(session, people, **notice)

    monkeypatch.setattr(deciding, "notify", notify)
    return sent


def _refused(call, *args, **kwargs):
    db.session.rollback()
    with write_intent(), pytest.raises((Conflict, ValidationFailed, NotFound, Forbidden)) as caught:
        call(db.session, *args, **kwargs)
    db.session.rollback()
    return caught.value


def _last(action: str) -> AuditEvent:
    return db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq.desc()).limit(1))


def _links(event: AuditEvent) -> set[tuple[str, str]]:
    return {(link.kind, link.ref) for link in db.session.scalars(sa.select(AuditLink).where(AuditLink.seq == event.seq))}


def _notices(user, kind: str) -> list[Notification]:
    return list(
        db.session.scalars(
            sa.select(Notification).where(Notification.user_id == user.id, Notification.kind == kind).order_by(Notification.id)
        )
    )


# Who may decide ---------------------------------------------------------------------------------------


def test_only_active_approvers_other_than_the_requester_decide(school):
    asked = ask(school["staff"], school["area"], school["phone"])
    for person in (school["staff"], school["admin"]):
        error = _refused(permissions.decide, person, asked.id, "approve")
        assert isinstance(error, Forbidden) and error.message == "Only approvers decide requests."
    committed(deactivate_user, school["admin"], school["deputy"])
    error = _refused(permissions.decide, fresh_user(school["deputy"]), asked.id, "approve")
    assert isinstance(error, Forbidden) and error.message == "Only approvers decide requests."
    approver_asks = ask(school["head"], school["area"], make_device(school["head"]))
    error = _refused(permissions.decide, school["head"], approver_asks.id, "approve")
    assert isinstance(error, Forbidden)
    assert error.message == "You cannot decide your own request; another approver will."
    assert fresh(asked).status == "pending" and fresh(approver_asks).status == "pending"


def fresh_user(user):
    db.session.rollback()
    return db.session.get(type(user), user.id)


def test_a_decision_must_be_approve_or_deny_with_a_short_note(school):
    asked = ask(school["staff"], school["area"], school["phone"])
    error = _refused(permissions.decide, school["head"], asked.id, "maybe")
    assert isinstance(error, ValidationFailed)
    assert (error.message, error.field_errors) == ("Choose approve or deny.", {"decision": ["Must be approve or deny."]})
    error = _refused(permissions.decide, school["head"], asked.id, "approve", note="x" * 301)
    assert (error.message, error.field_errors) == ("The note is too long.", {"note": ["Use at most 300 characters."]})
    error = _refused(permissions.decide, school["head"], 999_999, "approve")
    assert isinstance(error, NotFound) and error.message == "There is no such request."
    # Exactly 300 characters (after trimming) is allowed.
    decided = committed(permissions.decide, school["head"], asked.id, "deny", note="  " + "y" * 300 + "  ")
    assert decided.decision_note == "y" * 300


# Approving and denying ---------------------------------------------------------------------------------


def test_approving_records_who_when_the_end_and_tells_the_requester(school, frozen_clock, extras):
    asked = ask(school["staff"], school["area"], school["phone"])
    frozen_clock.advance(minutes=2)
    decided = committed(permissions.decide, school["head"], asked.id, "approve", note="  Be quick  ")
    request = fresh(decided)
    assert request.status == "approved"
    assert (request.decided_by_id, request.decided_at, request.decision_note) == (
        school["head"].id,
        NINE + timedelta(minutes=2),
        "Be quick",
    )
    assert request.approved_until == request.wanted_until == NINE + timedelta(hours=1)
    event = _last("permission.approved")
    assert (event.actor_id, event.subject_type, event.subject_id) == (school["head"].id, "permission_request", str(asked.id))
    assert json.loads(event.details) == {
        "approved_until": (NINE + timedelta(hours=1)).isoformat(),
        "area_id": school["area"].id,
        "note_given": True,
        "shortened": False,
    }
    assert _links(event) == {
        ("user", str(school["head"].id)),
        ("user", str(school["staff"].id)),
        ("permission_request", str(asked.id)),
        ("area", str(school["area"].id)),
        ("personal_device", str(school["phone"].id)),
    }
    (notice,) = _notices(school["staff"], "permission.approved")
    assert notice.title == "Approved: Apple iPhone 13 in Year 3 classroom until 10:00"
    assert notice.body == "By Mrs A Adeyemi. Note: Be quick"
    assert notice.url == f"/requests/{asked.id}"
    assert extras["permission.approved"] == [{"request_id": asked.id, "kind": "permission.approved"}]


def test_approving_without_a_note_and_shortening(school, frozen_clock):
    asked = ask(school["staff"], school["area"], school["phone"])
    until = NINE + timedelta(minutes=30)
    committed(permissions.decide, school["head"], asked.id, "approve", until=until)
    request = fresh(asked)
    assert request.approved_until == until and request.decision_note == ""
    details = json.loads(_last("permission.approved").details)
    assert details["shortened"] is True and details["note_given"] is False
    assert details["approved_until"] == until.isoformat()
    (notice,) = _notices(school["staff"], "permission.approved")
    assert notice.title.endswith("until 09:30") and notice.body == "By Mrs A Adeyemi."


def test_the_end_can_only_be_shortened_to_a_time_still_to_come(school, frozen_clock):
    asked = ask(school["staff"], school["area"], school["phone"])
    for until in (NINE, NINE - timedelta(minutes=1)):
        error = _refused(permissions.decide, school["head"], asked.id, "approve", until=until)
        assert (error.message, error.field_errors) == (
            "That time has passed.",
            {"until": ["That time has already passed; choose a later time."]},
        )
    error = _refused(permissions.decide, school["head"], asked.id, "approve", until=NINE + timedelta(hours=1, seconds=1))
    assert (error.message, error.field_errors) == (
        "You can only shorten it.",
        {"until": ["They asked until 10:00; choose that or earlier."]},
    )
    # Exactly the asked end is allowed; ``until`` is ignored when denying.
    committed(permissions.decide, school["head"], asked.id, "approve", until=NINE + timedelta(hours=1))
    assert fresh(asked).approved_until == NINE + timedelta(hours=1)
    other = ask(school["staff"], make_area(school["admin"], "Hall"), make_device(school["staff"], model="Pixel 8"))
    committed(permissions.decide, school["head"], other.id, "deny", until=NINE - timedelta(hours=1))
    assert fresh(other).status == "denied" and fresh(other).approved_until is None


def test_denying_records_it_and_tells_the_requester(school, extras):
    asked = ask(school["staff"], school["area"], school["phone"])
    committed(permissions.decide, school["head"], asked.id, "deny", note="Not now")
    request = fresh(asked)
    assert (request.status, request.decided_by_id, request.approved_until) == ("denied", school["head"].id, None)
    event = _last("permission.denied")
    assert json.loads(event.details) == {"area_id": school["area"].id, "note_given": True}
    assert event.actor_id == school["head"].id and event.subject_id == str(asked.id)
    (notice,) = _notices(school["staff"], "permission.denied")
    assert (notice.title, notice.body) == ("Denied: Apple iPhone 13 in Year 3 classroom", "By Mrs A Adeyemi. Note: Not now")
    assert notice.url == f"/requests/{asked.id}"
    assert extras["permission.denied"][0] == {"request_id": asked.id, "kind": "permission.denied"}
    committed(permissions.decide, school["head"], ask(school["staff"], school["area"], school["phone"]).id, "deny")
    assert _notices(school["staff"], "permission.denied")[-1].body == "By Mrs A Adeyemi."


def test_a_request_that_ran_out_cannot_be_decided(school, frozen_clock):
    asked = ask(school["staff"], school["area"], school["phone"])
    frozen_clock.advance(hours=1)  # exactly the wanted end
    error = _refused(permissions.decide, school["head"], asked.id, "approve")
    assert isinstance(error, Conflict)
    assert error.message == "This request ran out at 10:00 before anyone decided."
    frozen_clock.advance(seconds=-1)
    committed(permissions.decide, school["head"], asked.id, "approve")
    assert fresh(asked).status == "approved"


def test_approving_ends_the_same_device_elsewhere(school):
    hall = make_area(school["admin"], "Hall")
    first = ask(school["staff"], school["area"], school["phone"])
    committed(permissions.decide, school["head"], first.id, "approve")
    second = ask(school["staff"], hall, school["phone"])
    committed(permissions.decide, school["deputy"], second.id, "approve")
    assert fresh(first).status == "ended" and fresh(first).superseded_by_id == second.id
    ended = _last("permission.ended")  # the approver who moved the device ended its first place
    assert (ended.actor_id, ended.subject_id) == (school["deputy"].id, str(first.id))
    third = ask(school["staff"], school["area"], school["phone"])
    committed(permissions.decide, school["deputy"], third.id, "deny")
    assert fresh(second).status == "approved"  # a refusal ends nothing


# One decision per request: the second is told who decided ----------------------------------------------


def test_a_second_decision_is_told_who_decided_and_when(school, frozen_clock):
    approved = ask(school["staff"], school["area"], school["phone"])
    frozen_clock.advance(minutes=3)
    committed(permissions.decide, school["head"], approved.id, "approve")
    for decision in ("approve", "deny"):
        error = _refused(permissions.decide, school["deputy"], approved.id, decision)
        assert isinstance(error, Conflict) and error.message == "Mrs A Adeyemi already approved this at 09:03."
    denied = ask(school["staff"], make_area(school["admin"], "Hall"), make_device(school["staff"], model="Pixel 8"))
    committed(permissions.decide, school["deputy"], denied.id, "deny")
    error = _refused(permissions.decide, school["head"], denied.id, "approve")
    assert error.message == "Mr D Okafor already denied this at 09:03."
    assert fresh(approved).decided_by_id == school["head"].id and fresh(denied).decided_by_id == school["deputy"].id


def test_already_settled_names_each_ending(school):
    def settled(**fields) -> str:
        request = fresh(asked)
        for name, value in fields.items():
            setattr(request, name, value)
        return deciding.already_settled(request)

    asked = ask(school["staff"], school["area"], school["phone"])
    at = NINE + timedelta(minutes=7)
    assert settled(status="approved", emergency=True, decided_at=at) == (
        "Mr B Clarke used an emergency override at 09:07: it needs a review, not a decision."
    )
    assert settled(status="approved", standing_permission_id=1) == "This request was approved at once by a standing permission."
    assert settled(status="withdrawn") == "Mr B Clarke withdrew this request."
    assert settled(status="expired") == "This request has expired."
    assert settled(status="ended") == "This permission has already ended."
    assert settled(status="pending") == "This request has already been decided."


def test_withdraw_only_your_own_pending_request(school, frozen_clock):
    asked = ask(school["staff"], school["area"], school["phone"])
    error = _refused(permissions.withdraw, school["head"], asked.id)
    assert isinstance(error, (NotFound, Forbidden))
    frozen_clock.advance(minutes=4)
    committed(permissions.withdraw, school["staff"], asked.id)
    request = fresh(asked)
    assert (request.status, request.ended_at) == ("withdrawn", NINE + timedelta(minutes=4))
    event = _last("permission.withdrawn")
    assert (event.actor_id, event.subject_type, event.subject_id) == (school["staff"].id, "permission_request", str(asked.id))
    assert json.loads(event.details) == {"area_id": school["area"].id}
    assert ("personal_device", str(school["phone"].id)) in _links(event)
    error = _refused(permissions.withdraw, school["staff"], asked.id)
    assert isinstance(error, Conflict) and error.message == "Mr B Clarke withdrew this request."
    error = _refused(permissions.decide, school["head"], asked.id, "approve")
    assert error.message == "Mr B Clarke withdrew this request."


def test_a_withdrawal_that_waited_for_the_lock_sees_the_approval_that_won(school, monkeypatch):
    # On PostgreSQL the requester's withdrawal reads the request (pending), then waits for the row lock while
    # an approver's decision commits. After the lock it must decide on the row as it is now, not as first read.
    asked = ask(school["staff"], school["area"], school["phone"])
    real_lock = deciding.lock_request

    def approved_while_waiting(session, request_id):
        # The other transaction's change, written past this session's copy of the request.
        session.connection().execute(
            sa.update(PermissionRequest.__table__)
            .where(PermissionRequest.__table__.c.id == request_id)
            .values(status="approved", decided_by_id=school["head"].id, decided_at=NINE, approved_until=NINE + timedelta(hours=1))
        )
        return real_lock(session, request_id)

    monkeypatch.setattr(deciding, "lock_request", approved_while_waiting)
    error = _refused(permissions.withdraw, school["staff"], asked.id)
    assert isinstance(error, Conflict) and error.message == "Mrs A Adeyemi already approved this at 09:00."


def test_end_only_your_own_approved_permission(school, frozen_clock):
    asked = ask(school["staff"], school["area"], school["phone"])
    error = _refused(permissions.end_permission, school["staff"], asked.id)
    assert isinstance(error, Conflict) and error.message == "This has not been approved yet; withdraw it instead."
    committed(permissions.decide, school["head"], asked.id, "approve")
    error = _refused(permissions.end_permission, school["head"], asked.id)
    assert isinstance(error, (NotFound, Forbidden))
    frozen_clock.advance(minutes=20)
    committed(permissions.end_permission, school["staff"], asked.id)
    request = fresh(asked)
    assert (request.status, request.ended_at) == ("ended", NINE + timedelta(minutes=20))
    event = _last("permission.ended")
    assert (event.actor_id, event.subject_type, event.subject_id) == (school["staff"].id, "permission_request", str(asked.id))
    assert json.loads(event.details) == {"area_id": school["area"].id, "early": True}
    assert ("area", str(school["area"].id)) in _links(event)
    error = _refused(permissions.end_permission, school["staff"], asked.id)
    assert error.message == "This permission has already ended."
    denied = ask(school["staff"], school["area"], school["phone"])
    committed(permissions.decide, school["head"], denied.id, "deny")
    assert (
        _refused(permissions.end_permission, school["staff"], denied.id).message == "Mrs A Adeyemi already denied this at 09:20."
    )


def test_lock_request_says_whether_the_request_exists(school):
    asked = ask(school["staff"], school["area"], school["phone"])
    with write_intent():
        assert deciding.lock_request(db.session, asked.id) is True
        assert deciding.lock_request(db.session, asked.id + 1000) is False
        db.session.rollback()


# Reviewing an emergency override -------------------------------------------------------------------------


def test_only_another_active_approver_reviews_an_emergency(school):
    used = ask(school["staff"], school["area"], school["phone"], emergency=True, emergency_reason=EMERGENCY)
    for person in (school["staff"], school["admin"]):
        error = _refused(permissions.review_emergency, person, used.id, "justified")
        assert isinstance(error, Forbidden) and error.message == "Only approvers review emergency overrides."
    own = ask(school["head"], school["area"], make_device(school["head"]), emergency=True, emergency_reason=EMERGENCY)
    error = _refused(permissions.review_emergency, school["head"], own.id, "justified")
    assert isinstance(error, Forbidden)
    assert error.message == "You cannot review your own emergency override; another approver will."
    committed(deactivate_user, school["admin"], school["deputy"])
    error = _refused(permissions.review_emergency, fresh_user(school["deputy"]), used.id, "justified")
    assert isinstance(error, Forbidden) and error.message == "Only approvers review emergency overrides."
    plain = ask(school["staff"], make_area(school["admin"], "Hall"), make_device(school["staff"], model="Pixel 8"))
    error = _refused(permissions.review_emergency, school["head"], plain.id, "justified")
    assert isinstance(error, Conflict)
    assert error.message == "This was not an emergency override: there is nothing to review."
    assert _refused(permissions.review_emergency, school["head"], 999_999, "justified").message == "There is no such request."


def test_a_review_needs_a_known_outcome_and_a_reason_when_not_justified(school):
    used = ask(school["staff"], school["area"], school["phone"], emergency=True, emergency_reason=EMERGENCY)
    error = _refused(permissions.review_emergency, school["head"], used.id, "fine")
    assert isinstance(error, ValidationFailed)
    assert (error.message, error.field_errors) == (
        "Some details need correcting.",
        {"outcome": ["Choose justified or not justified."]},
    )
    error = _refused(permissions.review_emergency, school["head"], used.id, "not_justified", note="   ")
    assert error.field_errors == {"note": ["Say why it was not justified, and what happens next."]}
    error = _refused(permissions.review_emergency, school["head"], used.id, "justified", note="z" * 301)
    assert error.field_errors == {"note": ["Use at most 300 characters."]}
    error = _refused(permissions.review_emergency, school["head"], used.id, "not_justified", note="z" * 301)
    assert error.field_errors == {"note": ["Use at most 300 characters."]}
    assert fresh(used).reviewed_at is None


def test_a_review_is_recorded_once_and_the_requester_told(school, frozen_clock, extras):
    used = ask(school["staff"], school["area"], school["phone"], emergency=True, emergency_reason=EMERGENCY)
    frozen_clock.advance(hours=25, minutes=30)
    committed(permissions.review_emergency, school["head"], used.id, "not_justified", note="  " + "n" * 300 + "  ")
    request = fresh(used)
    assert (request.reviewed_by_id, request.reviewed_at, request.review_outcome, request.review_note) == (
        school["head"].id,
        NINE + timedelta(hours=25, minutes=30),
        "not_justified",
        "n" * 300,
    )
    event = _last("permission.emergency_reviewed")
    assert (event.actor_id, event.subject_type, event.subject_id) == (school["head"].id, "permission_request", str(used.id))
    assert json.loads(event.details) == {
        "area_id": school["area"].id,
        "outcome": "not_justified",
        "note": "n" * 300,
        "hours_after": 25.5,
        "late": True,
    }
    assert ("user", str(school["staff"].id)) in _links(event)
    (notice,) = _notices(school["staff"], "permission.emergency_reviewed")
    assert notice.title == "Your emergency override in Year 3 classroom was reviewed: not justified"
    assert notice.body == f"By Mrs A Adeyemi. Note: {'n' * 300}"
    assert notice.url == f"/requests/{used.id}"
    assert extras["permission.emergency_reviewed"] == [{"request_id": used.id, "kind": "permission.emergency_reviewed"}]
    error = _refused(permissions.review_emergency, school["deputy"], used.id, "justified")
    assert isinstance(error, Conflict)
    assert error.message == "Mrs A Adeyemi already reviewed this at 10:30: not justified."
    assert fresh(used).reviewed_by_id == school["head"].id


def test_a_prompt_justified_review_is_not_late(school, frozen_clock):
    used = ask(school["staff"], school["area"], school["phone"], emergency=True, emergency_reason=EMERGENCY)
    frozen_clock.advance(hours=24)  # exactly the limit is still in time
    committed(permissions.review_emergency, school["deputy"], used.id, "justified")
    details = json.loads(_last("permission.emergency_reviewed").details)
    assert details == {"area_id": school["area"].id, "outcome": "justified", "note": "", "hours_after": 24.0, "late": False}
    (notice,) = _notices(school["staff"], "permission.emergency_reviewed")
    assert notice.title.endswith("was reviewed: justified") and notice.body == "By Mr D Okafor."
    error = _refused(permissions.review_emergency, school["head"], used.id, "justified")
    assert error.message == "Mr D Okafor already reviewed this at 09:00: justified."
    assert fresh(used).status == RequestStatus.APPROVED.value
    assert db.session.get(PermissionRequest, used.id).emergency is True


def test_how_late_a_review_was_is_in_hours_to_a_tenth(school, frozen_clock):
    used = ask(school["staff"], school["area"], school["phone"], emergency=True, emergency_reason=EMERGENCY)
    frozen_clock.advance(hours=10, minutes=3, seconds=5)  # 10.0514 hours: a tenth of an hour, rounded up
    committed(permissions.review_emergency, school["deputy"], used.id, "justified")
    details = json.loads(_last("permission.emergency_reviewed").details)
    assert (details["hours_after"], details["late"]) == (10.1, False)
