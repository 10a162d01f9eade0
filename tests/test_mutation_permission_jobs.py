"""The timed permission jobs pinned exactly: expiry at the end time (not a second early), escalation to the
delegates after the set minutes (once), the chase for emergency overrides nobody reviewed in 24 hours (once),
and what each leaves in the audit log and the inboxes.

Written for mutation testing (issue 19): each assertion is one that a changed comparison, condition,
message or audit field in app/services/permissions/jobs.py would break. Direct calls with an explicit now.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, AuditLink, Notification, PermissionRequest
from app.services import permissions
from app.services.permissions import jobs
from app.services.settings import set_setting
from tests.factories import make_device
from tests.permission_factories import EMERGENCY, NINE, ask, committed, fresh, make_area, make_school


@pytest.fixture
def school(app, frozen_clock):
    people = make_school()
    committed(permissions.set_delegates, people["admin"], [people["deputy"].id])
    return people


@pytest.fixture
def extras(monkeypatch):
    """Who each notice went to and the ``extra`` it carried, by kind."""
    sent: dict[str, list[tuple[list[int], dict]]] = {}
    real_notify = jobs.notify

    def notify(session, people, **notice):
        sent.setdefault(notice["kind"], []).append((sorted(p.id for p in people), notice.get("extra")))
        return real_notify(session, people, **notice)

    monkeypatch.setattr(jobs, "notify", notify)
    return sent


def _run(job, now: datetime):
    db.session.rollback()
    with write_intent():
        result = job(db.session, now)
        db.session.commit()
    return result


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def _links(event: AuditEvent) -> set[tuple[str, str]]:
    return {(link.kind, link.ref) for link in db.session.scalars(sa.select(AuditLink).where(AuditLink.seq == event.seq))}


def _notices(user, kind: str) -> list[Notification]:
    return list(
        db.session.scalars(
            sa.select(Notification).where(Notification.user_id == user.id, Notification.kind == kind).order_by(Notification.id)
        )
    )


# Expiry ---------------------------------------------------------------------------------------------


def test_an_approved_permission_expires_at_its_end_not_a_second_before(school, extras):
    asked = ask(school["staff"], school["area"], school["phone"])
    committed(permissions.decide, school["head"], asked.id, "approve", until=NINE + timedelta(minutes=40))
    end = NINE + timedelta(minutes=40)
    assert _run(jobs.expire_due, end - timedelta(seconds=1)) == 0
    assert fresh(asked).status == "approved"
    assert _run(jobs.expire_due, end) == 1
    request = fresh(asked)
    assert (request.status, request.ended_at) == ("expired", end)  # the shortened end, not the asked one
    (event,) = _events("permission.expired")
    assert (event.actor_id, event.subject_type, event.subject_id) == (None, "permission_request", str(asked.id))
    assert json.loads(event.details) == {"was": "approved", "area_id": school["area"].id}
    assert _links(event) == {
        ("user", str(school["staff"].id)),
        ("permission_request", str(asked.id)),
        ("area", str(school["area"].id)),
        ("personal_device", str(school["phone"].id)),
    }
    (notice,) = _notices(school["staff"], "permission.expired")
    assert notice.title == "Time's up: Apple iPhone 13 in Year 3 classroom ended at 09:40"
    assert notice.url == f"/requests/{asked.id}"
    assert extras["permission.expired"] == [([school["staff"].id], {"request_id": asked.id, "kind": "permission.expired"})]
    assert _run(jobs.expire_due, end + timedelta(hours=1)) == 0  # once


def test_a_pending_request_expires_at_its_wanted_end(school, extras):
    asked = ask(school["staff"], school["area"], school["phone"])
    end = NINE + timedelta(hours=1)
    assert _run(jobs.expire_due, end - timedelta(seconds=1)) == 0
    assert _run(jobs.expire_due, end) == 1
    request = fresh(asked)
    assert (request.status, request.ended_at) == ("expired", end)
    (event,) = _events("permission.expired")
    assert json.loads(event.details) == {"was": "pending", "area_id": school["area"].id}
    (notice,) = _notices(school["staff"], "permission.expired")
    assert notice.title == "No decision in time: your request for Year 3 classroom has expired"


def test_only_live_requests_expire_each_once_in_id_order(school):
    hall = make_area(school["admin"], "Hall")
    library = make_area(school["admin"], "Library")
    first = ask(school["staff"], school["area"], school["phone"])
    second = ask(school["staff"], hall, school["phone"])
    denied = ask(school["staff"], library, school["phone"])
    committed(permissions.decide, school["head"], denied.id, "deny")
    withdrawn = ask(school["staff"], library, school["phone"])
    committed(permissions.withdraw, school["staff"], withdrawn.id)
    assert _run(jobs.expire_due, NINE + timedelta(hours=2)) == 2
    assert [e.subject_id for e in _events("permission.expired")] == [str(first.id), str(second.id)]
    assert (fresh(denied).status, fresh(withdrawn).status) == ("denied", "withdrawn")


def test_expiry_reads_each_request_afresh_though_the_session_already_holds_it(school):
    """A tick runs its jobs in one transaction: a request an earlier job loaded may have changed before the
    lock was taken, so expiry re-reads the locked rows rather than trusting the objects it holds."""
    asked = ask(school["staff"], school["area"], school["phone"])
    committed(permissions.decide, school["head"], asked.id, "approve", until=NINE + timedelta(minutes=40))
    shortened = NINE + timedelta(minutes=30)
    db.session.rollback()
    with write_intent():
        held = db.session.get(PermissionRequest, asked.id)
        assert held is not None and held.approved_until == NINE + timedelta(minutes=40)
        db.session.execute(
            sa.update(PermissionRequest)
            .where(PermissionRequest.id == asked.id)
            .values(approved_until=shortened)
            .execution_options(synchronize_session=False)
        )
        assert jobs.expire_due(db.session, NINE + timedelta(minutes=40)) == 1
        assert (held.status, held.ended_at) == ("expired", shortened)
        db.session.commit()


# Escalation -------------------------------------------------------------------------------------------


def test_a_request_nobody_decided_escalates_to_the_delegates_after_the_minutes_once(school, extras):
    asked = ask(school["staff"], school["area"], school["phone"])
    assert _run(jobs.escalate_due, NINE + timedelta(minutes=4, seconds=59)) == 0
    at = NINE + timedelta(minutes=5)
    assert _run(jobs.escalate_due, at) == 1
    assert fresh(asked).escalated_at == at
    (event,) = _events("permission.escalated")
    assert (event.actor_id, event.subject_type, event.subject_id) == (None, "permission_request", str(asked.id))
    assert json.loads(event.details) == {"notified_user_ids": [school["deputy"].id], "waited_minutes": 5}
    assert ("area", str(school["area"].id)) in _links(event)
    (notice,) = _notices(school["deputy"], "permission.escalated")
    assert notice.title == "Still waiting: Mr B Clarke: Apple iPhone 13 into Year 3 classroom"
    assert notice.body == f"Asked at 09:00; nobody has decided. {fresh(asked).reason_label}"
    assert notice.url == f"/approvals/{asked.id}"
    assert extras["permission.escalated"] == [
        (
            [school["deputy"].id],
            {"request_id": asked.id, "kind": "permission.escalated", "actions": ["approve", "deny"]},
        )
    ]
    assert _notices(school["head"], "permission.escalated") == []
    assert _run(jobs.escalate_due, at + timedelta(minutes=30)) == 0  # once


def test_escalation_follows_the_setting_and_skips_decided_and_run_out_requests(school):
    with write_intent():
        set_setting(db.session, school["admin"], "permissions.escalation_minutes", 20)
        db.session.commit()
    waiting = ask(school["staff"], school["area"], school["phone"])
    decided = ask(school["staff"], make_area(school["admin"], "Hall"), make_device(school["staff"], model="Pixel 8"))
    committed(permissions.decide, school["head"], decided.id, "approve")
    assert _run(jobs.escalate_due, NINE + timedelta(minutes=19)) == 0
    assert _run(jobs.escalate_due, NINE + timedelta(minutes=25)) == 1
    (event,) = _events("permission.escalated")
    assert event.subject_id == str(waiting.id) and json.loads(event.details)["waited_minutes"] == 25
    late = ask(school["staff"], make_area(school["admin"], "Library"), make_device(school["staff"], model="Nokia 3310"))
    # Its wanted end (10:00) has come: nothing to escalate, expiry's work.
    assert _run(jobs.escalate_due, NINE + timedelta(hours=1)) == 0
    assert fresh(late).escalated_at is None


# Emergency overrides nobody reviewed ------------------------------------------------------------------


def test_an_unreviewed_emergency_is_chased_after_24_hours_once(school, extras):
    used = ask(school["staff"], school["area"], school["phone"], emergency=True, emergency_reason=EMERGENCY)
    assert _run(jobs.escalate_unreviewed, NINE + timedelta(hours=23, minutes=59)) == 0
    at = NINE + timedelta(hours=24)
    assert _run(jobs.escalate_unreviewed, at) == 1
    assert fresh(used).review_escalated_at == at
    (event,) = _events("permission.emergency_review_overdue")
    assert (event.actor_id, event.subject_type, event.subject_id) == (None, "permission_request", str(used.id))
    recipients = sorted([school["admin"].id, school["deputy"].id])
    details = json.loads(event.details)
    assert sorted(details.pop("notified_user_ids")) == recipients
    assert details == {"area_id": school["area"].id, "hours_waiting": 24}
    assert ("user", str(school["staff"].id)) in _links(event)
    (notice,) = _notices(school["admin"], "permission.emergency_review_overdue")
    assert notice.title == "Not reviewed in 24 hours: Mr B Clarke's emergency override in Year 3 classroom"
    assert notice.body == f"Used at 09:00 on 25/11/2026: {EMERGENCY}"
    assert notice.url == f"/approvals/{used.id}"
    assert extras["permission.emergency_review_overdue"] == [
        (recipients, {"request_id": used.id, "kind": "permission.emergency_review_overdue"})
    ]
    assert _run(jobs.escalate_unreviewed, at + timedelta(hours=5)) == 0  # once


def test_a_reviewed_emergency_or_a_plain_request_is_not_chased(school):
    used = ask(school["staff"], school["area"], school["phone"], emergency=True, emergency_reason=EMERGENCY)
    committed(permissions.review_emergency, school["head"], used.id, "justified")
    ask(school["staff"], make_area(school["admin"], "Hall"), make_device(school["staff"], model="Pixel 8"))
    assert _run(jobs.escalate_unreviewed, NINE + timedelta(days=3)) == 0
    assert fresh(used).review_escalated_at is None


def test_run_jobs_reports_each_count_in_its_place(school):
    ask(school["staff"], school["area"], school["phone"], emergency=True, emergency_reason=EMERGENCY)
    ask(school["staff"], make_area(school["admin"], "Hall"), make_device(school["staff"], model="Pixel 8"))
    report = _run(jobs.run_jobs, NINE + timedelta(minutes=6))
    assert report == jobs.JobReport(expired=0, escalated=1, reviews_overdue=0)
    report = _run(jobs.run_jobs, NINE + timedelta(hours=25))
    assert report == jobs.JobReport(expired=2, escalated=0, reviews_overdue=1)
    assert jobs.JobReport(expired=1, escalated=2).reviews_overdue == 0
