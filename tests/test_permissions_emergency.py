"""The emergency override: approved at once (capped to the school day), approvers and delegates alerted,
reviewed once within 24 hours, the overdue review escalated once; its pages and its API."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.clock import format_time, to_local
from app.database import write_intent
from app.extensions import db
from app.models import AreaRule, AuditEvent, AuditLink, Notification, PermissionRequest, PushOutbox, PushSubscription, Role
from app.services import permissions
from app.services.audit import verify_chain
from app.services.errors import Conflict, Forbidden, ValidationFailed
from tests.conftest import csrf_token
from tests.factories import make_device, make_imei, make_user, sign_in
from tests.permission_factories import Browser, ask, audit_actions, committed, fresh, make_area

REASON = "Pupil having a seizure in class; calling 999 and the parents now."


@pytest.fixture
def school(app, frozen_clock):
    """A head on duty, a deputy (the delegate, e.g. the DSL), an approver who is away, an admin, two staff."""
    people = {
        "head": make_user(Role.APPROVER, name="Mrs A Adeyemi"),
        "deputy": make_user(Role.APPROVER, name="Mr D Okafor"),
        "away": make_user(Role.APPROVER, name="Ms W Away"),
        "admin": make_user(Role.ADMIN, name="Mr T Hughes"),
        "office": make_user(Role.OFFICE, name="Ms O Brennan"),
        "staff": make_user(name="Mr B Clarke"),
        "other": make_user(name="Miss C Davies"),
    }
    people["phone"] = make_device(people["staff"], model="iPhone 13")
    people["deputy_phone"] = make_device(people["deputy"], model="Pixel 8", make="Google")
    people["area"] = make_area(people["admin"], "Year 3 classroom")
    committed(permissions.set_delegates, people["admin"], [people["deputy"].id])
    committed(permissions.set_away, people["away"], True)
    return people


def emergency(requester, area, device, reason: str = REASON, **extra) -> PermissionRequest:
    return ask(requester, area, device, emergency=True, emergency_reason=reason, **extra)


def notices(kind: str) -> dict[int, Notification]:
    db.session.rollback()
    return {n.user_id: n for n in db.session.scalars(sa.select(Notification).where(Notification.kind == kind))}


def event(action: str) -> AuditEvent:
    db.session.rollback()
    return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)).one()


# Declaring an emergency -------------------------------------------------------------------------------


def test_an_override_is_approved_at_once_and_capped_at_the_end_of_the_school_day(school, frozen_clock):
    frozen_clock.set(datetime(2026, 11, 25, 17, 30, tzinfo=UTC))  # 17:30 in London (GMT); the day ends at 18:00
    asked = emergency(school["staff"], school["area"], school["phone"], duration="one_hour")
    asked = fresh(asked)
    assert asked.status == "approved" and asked.emergency and asked.emergency_reason == REASON
    assert to_local(asked.approved_until).strftime("%H:%M") == "18:00"
    assert asked.decided_by_id is None and asked.reviewed_at is None
    assert asked.status_label == "Emergency override"
    assert permissions.describe_status(asked) == "Emergency override: approved until 18:00, to be reviewed."
    details = json.loads(event("permission.emergency_override").details)
    assert details["capped"] is True and details["emergency_reason"] == REASON
    assert audit_actions("permission_request", asked.id) == ["permission.emergency_override"]


def test_within_the_day_the_time_asked_is_kept(school):
    asked = fresh(emergency(school["staff"], school["area"], school["phone"], duration="one_hour"))
    assert asked.approved_until == asked.wanted_until
    assert json.loads(event("permission.emergency_override").details)["capped"] is False


@pytest.mark.parametrize(
    ("reason", "says"),
    [
        ("", "Say what is happening"),
        ("   ", "Say what is happening"),
        ("help", "at least 10 characters"),
        ("x" * 301, "at most 300 characters (you used 301)"),
    ],
)
def test_the_reason_is_required_and_says_what_is_wrong(school, reason, says):
    with pytest.raises(ValidationFailed) as refused:
        emergency(school["staff"], school["area"], school["phone"], reason=reason)
    assert says in refused.value.field_errors["emergency_reason"][0]
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PermissionRequest)) == 0


def test_without_the_emergency_flag_a_typed_reason_changes_nothing(school):
    asked = fresh(ask(school["staff"], school["area"], school["phone"], emergency=False, emergency_reason=REASON))
    assert asked.status == "pending" and not asked.emergency and asked.emergency_reason == ""


@pytest.mark.parametrize("rule", [AreaRule.CLOSED.value, AreaRule.SCHOOL_DEVICES_ONLY.value])
def test_area_rules_still_apply_in_an_emergency(school, rule):
    area = make_area(school["admin"], "EYFS changing area", rule)
    with pytest.raises(permissions.AreaRuleRefusal):
        emergency(school["staff"], area, school["phone"])
    db.session.commit()  # as the error handler does: the refusal is kept
    assert audit_actions("area", area.id)[-1] == "permission.refused_by_rule"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PermissionRequest)) == 0


def test_the_approvers_on_duty_and_the_delegates_are_alerted_at_once(school):
    with write_intent():
        db.session.add(
            PushSubscription(user_id=school["head"].id, endpoint="https://fcm.googleapis.com/x/1", p256dh="k", auth="a")
        )
        db.session.commit()
    imei = make_imei()
    asked = emergency(
        school["staff"], school["area"], school["phone"], reason=f"Pupil collapsed; my phone {imei} is the only one here."
    )
    told = notices("permission.emergency_override")
    assert set(told) == {school["head"].id, school["deputy"].id}  # not the approver who is away, not the requester
    notice = told[school["head"].id]
    until = format_time(fresh(asked).approved_until)
    assert notice.title == f"EMERGENCY: Mr B Clarke: Apple iPhone 13 in Year 3 classroom until {until}"
    assert notice.body.startswith("Pupil collapsed") and notice.url == f"/approvals/{asked.id}"
    payload = json.loads(db.session.scalars(sa.select(PushOutbox.payload)).one())
    assert payload["title"].startswith("EMERGENCY") and "actions" not in payload
    assert imei not in json.dumps(payload) and imei[-4:] in payload["body"]
    assert imei not in event("permission.emergency_override").details


def test_a_delegate_who_is_away_is_still_alerted(school):
    committed(permissions.set_away, school["deputy"], True)
    emergency(school["staff"], school["area"], school["phone"])
    assert set(notices("permission.emergency_override")) == {school["head"].id, school["deputy"].id}


def test_each_person_is_told_once_and_listed_once_in_the_audit(school):
    committed(permissions.set_delegates, school["admin"], [school["deputy"].id, school["head"].id])
    emergency(school["staff"], school["area"], school["phone"])
    notified = json.loads(event("permission.emergency_override").details)["notified_user_ids"]
    assert sorted(notified) == sorted({school["head"].id, school["deputy"].id})


def test_staff_can_end_an_override_early_and_it_expires_like_any_permission(school, frozen_clock):
    ended = emergency(school["staff"], school["area"], school["phone"])
    committed(permissions.end_permission, school["staff"], ended.id)
    assert fresh(ended).status == "ended"
    expiring = emergency(school["staff"], school["area"], school["phone"])
    frozen_clock.advance(hours=2)
    assert committed(permissions.run_jobs, frozen_clock()).expired == 1
    assert fresh(expiring).status == "expired"
    assert fresh(expiring).status_label == "Expired (emergency override)"


def test_nobody_decides_an_override(school):
    asked = emergency(school["staff"], school["area"], school["phone"])
    with pytest.raises(Conflict) as refused:
        committed(permissions.decide, school["head"], asked.id, "deny")
    assert "emergency override" in refused.value.message and "review" in refused.value.message


# Reviewing ------------------------------------------------------------------------------------------


def test_a_review_is_recorded_once_and_the_second_reviewer_is_told_who(school):
    asked = emergency(school["staff"], school["area"], school["phone"])
    committed(permissions.review_emergency, school["head"], asked.id, "justified", note="Right call.")
    reviewed = fresh(asked)
    assert (reviewed.review_outcome, reviewed.review_note, reviewed.reviewed_by_id) == (
        "justified",
        "Right call.",
        school["head"].id,
    )
    assert reviewed.review_label == "reviewed by Mrs A Adeyemi: justified"
    assert permissions.describe_status(reviewed).endswith("reviewed by Mrs A Adeyemi: justified.")
    with pytest.raises(Conflict) as second:
        committed(permissions.review_emergency, school["deputy"], asked.id, "not_justified", note="No.")
    assert second.value.message.startswith("Mrs A Adeyemi already reviewed this at")
    assert notices("permission.emergency_reviewed").keys() == {school["staff"].id}
    assert permissions.emergencies_to_review(db.session) == []
    reviewed_event = event("permission.emergency_reviewed")
    assert json.loads(reviewed_event.details)["outcome"] == "justified"
    links = set(db.session.execute(sa.select(AuditLink.kind, AuditLink.ref).where(AuditLink.seq == reviewed_event.seq)))
    assert {
        ("area", str(school["area"].id)),
        ("personal_device", str(school["phone"].id)),
        ("user", str(school["staff"].id)),
    } <= links


def test_an_approver_never_reviews_their_own_override(school):
    own = emergency(school["deputy"], school["area"], school["deputy_phone"])
    assert school["deputy"].id not in notices("permission.emergency_override")
    with pytest.raises(Forbidden):
        committed(permissions.review_emergency, school["deputy"], own.id, "justified")
    committed(permissions.review_emergency, school["head"], own.id, "justified")


def test_staff_never_review(school):
    asked = emergency(school["staff"], school["area"], school["phone"])
    with pytest.raises(Forbidden):
        committed(permissions.review_emergency, school["other"], asked.id, "justified")


def test_not_justified_needs_a_note_and_outcomes_are_known(school):
    asked = emergency(school["staff"], school["area"], school["phone"])
    with pytest.raises(ValidationFailed) as no_note:
        committed(permissions.review_emergency, school["head"], asked.id, "not_justified", note="  ")
    assert "Say why" in no_note.value.field_errors["note"][0]
    with pytest.raises(ValidationFailed) as unknown:
        committed(permissions.review_emergency, school["head"], asked.id, "maybe")
    assert unknown.value.field_errors["outcome"]
    committed(permissions.review_emergency, school["head"], asked.id, "not_justified", note="Should have called the office.")
    assert fresh(asked).review_label == "reviewed by Mrs A Adeyemi: not justified"


def test_only_overrides_are_reviewed(school):
    plain = ask(school["staff"], school["area"], school["phone"])
    with pytest.raises(Conflict):
        committed(permissions.review_emergency, school["head"], plain.id, "justified")


def test_the_inbox_lists_overrides_to_review_oldest_first(school, frozen_clock):
    first = emergency(school["staff"], school["area"], school["phone"])
    frozen_clock.advance(minutes=5)
    second = emergency(school["deputy"], school["area"], school["deputy_phone"])
    assert [r.id for r in permissions.emergencies_to_review(db.session)] == [first.id, second.id]


# The 24-hour review escalation ----------------------------------------------------------------------


def test_an_unreviewed_override_is_escalated_once_after_24_hours(school, frozen_clock):
    asked = emergency(school["staff"], school["area"], school["phone"])
    # Another device: a second approval of the same phone would end the first (one device, one place).
    reviewed = emergency(school["staff"], school["area"], make_device(school["staff"], model="iPad", kind="tablet"))
    committed(permissions.review_emergency, school["head"], reviewed.id, "justified")
    frozen_clock.advance(hours=23)
    assert committed(permissions.run_jobs, frozen_clock()).reviews_overdue == 0
    frozen_clock.advance(hours=2)  # 25 hours after
    assert committed(permissions.run_jobs, frozen_clock()).reviews_overdue == 1
    assert committed(permissions.run_jobs, frozen_clock()).reviews_overdue == 0
    frozen_clock.advance(hours=25)
    assert committed(permissions.run_jobs, frozen_clock()).reviews_overdue == 0
    assert fresh(asked).review_escalated_at is not None and fresh(reviewed).review_escalated_at is None
    told = notices("permission.emergency_review_overdue")
    assert set(told) == {school["admin"].id, school["deputy"].id}
    assert told[school["admin"].id].title.startswith("Not reviewed in 24 hours: Mr B Clarke's emergency override")
    assert audit_actions("permission_request", asked.id) == [
        "permission.emergency_override",
        "permission.expired",
        "permission.emergency_review_overdue",
    ]
    # A late review is still recorded (and marked late).
    committed(permissions.review_emergency, school["deputy"], asked.id, "justified")
    last_review = db.session.scalars(
        sa.select(AuditEvent.details).where(AuditEvent.action == "permission.emergency_reviewed").order_by(AuditEvent.seq.desc())
    ).first()
    assert json.loads(last_review)["late"] is True
    assert verify_chain(db.session).ok


# Pages ----------------------------------------------------------------------------------------------


def browser_for(app, user) -> Browser:
    browser = Browser(app)
    sign_in(browser, user)
    return browser


def checkbox(page: str) -> str:
    return re.search(r'<input[^>]*id="emergency"[^>]*>', page).group(0)


def test_the_door_form_keeps_what_was_typed_and_says_what_is_wrong(app, school):
    browser = browser_for(app, school["staff"])
    path = f"/a/{school['area'].poster_token}"
    page = browser.get(path).get_data(as_text=True)
    assert "It is an emergency: I cannot wait for a decision" in page and '<legend class="label">Emergency</legend>' in page
    assert "checked" not in checkbox(page)  # visible, never the default
    form = {
        "csrf_token": csrf_token(browser, path),
        "device": f"personal-{school['phone'].id}",
        "reason": "medical",
        "duration": "one_hour",
        "emergency": "y",
        "emergency_reason": "Seizure",
    }
    refused = browser.post(path, data=form)
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert "There is a problem" in body and 'href="#emergency_reason"' in body
    assert "use at least 10 characters" in body
    assert "Seizure</textarea>" in body and "checked" in checkbox(body)
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PermissionRequest)) == 0


def test_declaring_an_emergency_at_the_door_shows_the_override_and_then_its_review(app, school):
    browser = browser_for(app, school["staff"])
    path = f"/a/{school['area'].poster_token}"
    form = {
        "csrf_token": csrf_token(browser, path),
        "device": f"personal-{school['phone'].id}",
        "reason": "medical",
        "duration": "rest_of_day",
        "emergency": "y",
        "emergency_reason": REASON,
    }
    done = browser.post(path, data=form)
    assert done.status_code == 302
    status_page = browser.get(done.headers["Location"]).get_data(as_text=True)
    assert "Emergency override: approved until 18:00, to be reviewed." in status_page
    assert "head and the designated safeguarding lead have been told" in status_page
    assert "I've left the room" in status_page

    head = browser_for(app, school["head"])
    inbox = head.get("/approvals").get_data(as_text=True)
    assert "Emergency overrides to review" in inbox and REASON in inbox
    asked_id = int(done.headers["Location"].rsplit("/", 1)[1])
    token = csrf_token(head, "/approvals")
    missing_note = head.post(f"/approvals/{asked_id}/review", data={"csrf_token": token, f"e{asked_id}-outcome": "not_justified"})
    assert missing_note.status_code == 422 and "Say why it was not justified" in missing_note.get_data(as_text=True)
    recorded = head.post(f"/approvals/{asked_id}/review", data={"csrf_token": token, f"e{asked_id}-outcome": "justified"})
    assert recorded.status_code == 302
    assert "Emergency overrides to review" not in head.get("/approvals").get_data(as_text=True)
    again = head.post(
        f"/approvals/{asked_id}/review", data={"csrf_token": token, f"e{asked_id}-outcome": "justified", "back": "one"}
    )
    assert "Mrs A Adeyemi already reviewed this" in head.get(again.headers["Location"]).get_data(as_text=True)

    assert "Reviewed by Mrs A Adeyemi: justified" in browser.get(f"/requests/{asked_id}").get_data(as_text=True)
    assert "reviewed by Mrs A Adeyemi: justified" in browser.get("/requests").get_data(as_text=True)


def test_the_requester_is_told_on_the_approval_page_that_another_approver_reviews(app, school):
    own = emergency(school["deputy"], school["area"], school["deputy_phone"])
    page = browser_for(app, school["deputy"]).get(f"/approvals/{own.id}").get_data(as_text=True)
    assert "This is your own emergency override: another approver reviews it." in page
    assert "Record review" not in page
    assert "Record review" in browser_for(app, school["head"]).get(f"/approvals/{own.id}").get_data(as_text=True)


# API ------------------------------------------------------------------------------------------------


class Api:
    def __init__(self, app, user) -> None:
        self.browser = browser_for(app, user)
        self.token = csrf_token(self.browser, "/")

    def get(self, path: str):
        return self.browser.get(f"/api/v1{path}")

    def post(self, path: str, body: dict | None = None):
        return self.browser.post(f"/api/v1{path}", json=body or {}, headers={"X-CSRFToken": self.token})


def test_the_api_declares_an_emergency_and_reviews_it_once(app, school):
    staff = Api(app, school["staff"])
    ask_body = {
        "area_id": school["area"].id,
        "device": f"personal-{school['phone'].id}",
        "reason": "medical",
        "duration": "one_hour",
        "emergency": True,
    }
    missing = staff.post("/permission-requests", ask_body)
    assert missing.status_code == 422 and missing.mimetype == "application/problem+json"
    assert missing.get_json()["errors"]["emergency_reason"]
    not_bool = staff.post("/permission-requests", {**ask_body, "emergency": "yes", "emergency_reason": REASON})
    assert not_bool.status_code == 422 and not_bool.get_json()["errors"]["emergency"]
    created = staff.post("/permission-requests", {**ask_body, "emergency_reason": REASON})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert (body["status"], body["emergency"], body["emergency_reason"], body["review"]) == ("approved", True, REASON, None)
    assert body["status_text"].startswith("Emergency override: approved until")
    request_id = body["id"]

    assert staff.post(f"/permission-requests/{request_id}/review", {"outcome": "justified"}).status_code == 403
    head = Api(app, school["head"])
    assert head.post("/permission-requests/999999/review", {"outcome": "justified"}).status_code == 404
    no_note = head.post(f"/permission-requests/{request_id}/review", {"outcome": "not_justified"})
    assert no_note.status_code == 422 and no_note.get_json()["errors"]["note"]
    unknown = head.post(f"/permission-requests/{request_id}/review", {"outcome": "justified", "by": "me"})
    assert unknown.status_code == 422
    reviewed = head.post(f"/permission-requests/{request_id}/review", {"outcome": "justified", "note": "Right call."})
    assert reviewed.status_code == 200
    review = reviewed.get_json()["review"]
    assert (review["outcome"], review["note"], review["reviewed_by"]["name"]) == ("justified", "Right call.", "Mrs A Adeyemi")
    second = Api(app, school["deputy"]).post(f"/permission-requests/{request_id}/review", {"outcome": "justified"})
    assert second.status_code == 409 and "Mrs A Adeyemi already reviewed this" in second.get_json()["detail"]
    assert staff.get(f"/permission-requests/{request_id}").get_json()["review"]["outcome"] == "justified"


def test_the_office_now_board_does_not_show_what_was_happening(app, school):
    emergency(school["staff"], school["area"], school["phone"])
    items = Api(app, school["office"]).get("/now").get_json()["items"]
    assert items[0]["emergency"] is True and items[0]["emergency_reason"] == ""
    assert Api(app, school["head"]).get("/now").get_json()["items"][0]["emergency_reason"] == REASON
