"""The permission rules: area rules, own requests, standing permissions, decisions, cover, expiry, escalation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.clock import to_local
from app.extensions import db
from app.models import AreaRule, Notification, PermissionRequest, RequestStatus, Role
from app.services import notifications, permissions
from app.services.audit import verify_chain
from app.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.services.permissions import DeviceOption
from tests.factories import make_device, make_user
from tests.permission_factories import ask, audit_actions, committed, fresh, make_area


@pytest.fixture
def school(app, frozen_clock):
    """A head, a deputy (the delegate), an admin, two staff with a phone each, and an ask-rule classroom."""
    people = {
        "head": make_user(Role.APPROVER, name="Mrs A Adeyemi"),
        "deputy": make_user(Role.APPROVER, name="Mr D Okafor"),
        "admin": make_user(Role.ADMIN, name="Mr T Hughes"),
        "staff": make_user(name="Mr B Clarke"),
        "other": make_user(name="Miss C Davies"),
    }
    people["phone"] = make_device(people["staff"], model="iPhone 13")
    people["other_phone"] = make_device(people["other"], model="Galaxy A54", make="Samsung")
    people["area"] = make_area(people["admin"], "Year 3 classroom")
    committed(permissions.set_delegates, people["admin"], [people["deputy"].id])
    return people


def notices_of(user, kind: str | None = None) -> list[Notification]:
    query = sa.select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
    if kind:
        query = query.where(Notification.kind == kind)
    return list(db.session.scalars(query))


# Area rules ---------------------------------------------------------------------------------------


def test_closed_area_refuses_every_device_and_audits_the_attempt(school):
    closed = make_area(school["admin"], "Changing area", AreaRule.CLOSED.value)
    with pytest.raises(permissions.AreaRuleRefusal) as refused:
        ask(school["staff"], closed, school["phone"])
    assert "closed to phones and recording devices" in refused.value.message
    assert refused.value.field_errors["area"]
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PermissionRequest)) == 0


def test_area_rule_refusal_is_kept_in_the_audit_log(school):
    closed = make_area(school["admin"], "Changing area", AreaRule.CLOSED.value)
    with pytest.raises(permissions.AreaRuleRefusal) as refused:
        ask(school["staff"], closed, school["phone"])
    assert refused.value.keep_changes
    db.session.commit()  # what the error handler does with keep_changes
    assert "permission.refused_by_rule" in audit_actions("area", closed.id)


def test_school_devices_only_refuses_personal_devices(school):
    eyfs = make_area(school["admin"], "EYFS unit", AreaRule.SCHOOL_DEVICES_ONLY.value)
    with pytest.raises(permissions.AreaRuleRefusal) as refused:
        ask(school["staff"], eyfs, school["phone"])
    assert "school devices only" in refused.value.message
    assert "personal phones" in refused.value.field_errors["device"][0]


def test_school_devices_only_accepts_a_school_device_from_a_provider(school, monkeypatch):
    from tests.equipment_factories import make_asset

    ipad_id = make_asset(
        make_user(Role.OFFICE), tag="IPAD-77", name="School iPad 3", kind="tablet"
    ).id  # the request's asset_id is a foreign key

    def school_ipad(_session, user):
        return (
            [DeviceOption(key="asset-77", label="School iPad 3", asset_id=ipad_id, school_device=True)]
            if user.id == school["staff"].id
            else []
        )

    monkeypatch.setattr(permissions.options, "_device_option_providers", [*permissions.options._device_option_providers])
    permissions.register_device_option_provider(school_ipad)
    eyfs = make_area(school["admin"], "EYFS unit", AreaRule.SCHOOL_DEVICES_ONLY.value)
    asked = committed(
        permissions.request_permission,
        school["staff"],
        eyfs,
        device_key="asset-77",
        reason="learning_evidence",
        duration="one_hour",
    )
    assert asked.asset_id == ipad_id and asked.personal_device_id is None
    assert asked.device_label == "School iPad 3"
    assert asked.status == RequestStatus.PENDING.value
    assert [o.key for o in permissions.device_options(db.session, school["other"])] == [f"personal-{school['other_phone'].id}"]


def test_a_device_that_is_not_yours_is_refused(school):
    with pytest.raises(ValidationFailed) as refused:
        ask(school["staff"], school["area"], school["other_phone"])
    assert "device" in refused.value.field_errors


def test_other_reason_needs_words(school):
    with pytest.raises(ValidationFailed) as refused:
        ask(school["staff"], school["area"], school["phone"], reason="other")
    assert refused.value.field_errors["reason_other"] == ["Say briefly why you need it."]


# Asking and routing ---------------------------------------------------------------------------------


def test_asking_notifies_every_approver_on_duty_with_the_request_id(school, monkeypatch):
    handed: list[tuple[list, dict]] = []
    monkeypatch.setattr(notifications, "_channels", [lambda _s, notices, extra: handed.append((notices, extra))])
    asked = ask(school["staff"], school["area"], school["phone"])
    assert asked.status == "pending"
    assert to_local(asked.wanted_until).strftime("%H:%M") == "10:00"
    assert audit_actions("permission_request", asked.id) == ["permission.requested"]
    for approver in (school["head"], school["deputy"]):
        (notice,) = notices_of(approver, "permission.requested")
        assert notice.title == "Mr B Clarke: Apple iPhone 13 into Year 3 classroom until 10:00"
        assert notice.body == "Expecting an urgent call"
        assert notice.url == f"/approvals/{asked.id}"
    assert notices_of(school["staff"]) == []
    ((notices, extra),) = handed
    assert {n.user_id for n in notices} == {school["head"].id, school["deputy"].id}
    assert extra == {"request_id": asked.id, "kind": "permission.requested", "actions": ["approve", "deny"]}


def test_an_away_approver_is_not_told_and_all_away_goes_to_delegates(school):
    committed(permissions.set_away, school["head"], True)
    first = ask(school["staff"], school["area"], school["phone"])
    assert notices_of(school["head"]) == []
    assert len(notices_of(school["deputy"], "permission.requested")) == 1
    committed(permissions.set_away, school["deputy"], True)
    assert permissions.approvers_on_duty(db.session) == []
    # Another area: a second waiting request for the same phone and area would be refused.
    second = ask(school["staff"], make_area(school["admin"], "Hall"), school["phone"])
    assert notices_of(school["head"]) == []
    assert [n.url for n in notices_of(school["deputy"], "permission.requested")] == [
        f"/approvals/{first.id}",
        f"/approvals/{second.id}",
    ]
    assert "approver.away" in audit_actions("user", school["head"].id)


def test_delegates_must_be_approvers(school):
    with pytest.raises(ValidationFailed):
        committed(permissions.set_delegates, school["admin"], [school["staff"].id])
    with pytest.raises(Forbidden):
        committed(permissions.set_delegates, school["staff"], [school["head"].id])


def test_approvers_are_not_told_of_their_own_request(school):
    head_phone = make_device(school["head"], model="iPhone 15")
    ask(school["head"], school["area"], head_phone)
    assert notices_of(school["head"]) == []
    assert len(notices_of(school["deputy"], "permission.requested")) == 1


# Deciding --------------------------------------------------------------------------------------------


def test_nobody_decides_their_own_request(school):
    head_phone = make_device(school["head"], model="iPhone 15")
    asked = ask(school["head"], school["area"], head_phone)
    with pytest.raises(Forbidden) as refused:
        committed(permissions.decide, school["head"], asked.id, "approve")
    assert "your own request" in refused.value.message
    assert fresh(asked).status == "pending"
    decided = committed(permissions.decide, school["deputy"], asked.id, "approve")
    assert decided.status == "approved"


def test_staff_cannot_decide(school):
    asked = ask(school["staff"], school["area"], school["phone"])
    with pytest.raises(Forbidden):
        committed(permissions.decide, school["other"], asked.id, "approve")
    assert fresh(asked).status == "pending"


def test_approve_with_a_note_and_a_shorter_end(school, frozen_clock):
    asked = ask(school["staff"], school["area"], school["phone"])
    shorter = frozen_clock.now + timedelta(minutes=20)
    decided = committed(permissions.decide, school["head"], asked.id, "approve", note="Keep it on silent", until=shorter)
    assert decided.status == "approved"
    assert decided.approved_until == shorter
    assert decided.decided_by_id == school["head"].id
    assert permissions.describe_status(fresh(asked)) == "Approved until 09:20 by Mrs A Adeyemi"
    (notice,) = notices_of(school["staff"], "permission.approved")
    assert notice.title == "Approved: Apple iPhone 13 in Year 3 classroom until 09:20"
    assert "Keep it on silent" in notice.body
    assert audit_actions("permission_request", asked.id) == ["permission.requested", "permission.approved"]


def test_the_end_time_can_only_be_shortened(school, frozen_clock):
    asked = ask(school["staff"], school["area"], school["phone"])
    with pytest.raises(ValidationFailed) as refused:
        committed(permissions.decide, school["head"], asked.id, "approve", until=frozen_clock.now + timedelta(hours=2))
    assert refused.value.field_errors["until"] == ["They asked until 10:00; choose that or earlier."]


def test_deny_with_a_note_then_a_second_decision_is_told_who_decided(school):
    asked = ask(school["staff"], school["area"], school["phone"])
    committed(permissions.decide, school["head"], asked.id, "deny", note="Year 3 are doing swimming today")
    with pytest.raises(Conflict) as late:
        committed(permissions.decide, school["deputy"], asked.id, "approve")
    assert late.value.message == "Mrs A Adeyemi already denied this at 09:00."
    assert late.value.status == 409
    request = fresh(asked)
    assert request.status == "denied" and request.decision_note == "Year 3 are doing swimming today"
    assert permissions.describe_status(request) == "Denied by Mrs A Adeyemi"
    assert audit_actions("permission_request", asked.id) == ["permission.requested", "permission.denied"]


# Withdraw and end ---------------------------------------------------------------------------------------


def test_withdraw_while_pending_only(school):
    asked = ask(school["staff"], school["area"], school["phone"])
    with pytest.raises(NotFound):
        committed(permissions.withdraw, school["other"], asked.id)
    committed(permissions.withdraw, school["staff"], asked.id)
    assert fresh(asked).status == "withdrawn"
    with pytest.raises(Conflict):
        committed(permissions.withdraw, school["staff"], asked.id)
    with pytest.raises(Conflict) as late:
        committed(permissions.decide, school["head"], asked.id, "approve")
    assert late.value.message == "Mr B Clarke withdrew this request."
    assert audit_actions("permission_request", asked.id) == ["permission.requested", "permission.withdrawn"]


def test_ive_left_the_room_ends_an_approved_permission(school, frozen_clock):
    asked = ask(school["staff"], school["area"], school["phone"])
    with pytest.raises(Conflict) as early:
        committed(permissions.end_permission, school["staff"], asked.id)
    assert "withdraw it instead" in early.value.message
    committed(permissions.decide, school["head"], asked.id, "approve")
    frozen_clock.advance(minutes=12)
    with pytest.raises(NotFound):
        committed(permissions.end_permission, school["other"], asked.id)
    committed(permissions.end_permission, school["staff"], asked.id)
    request = fresh(asked)
    assert request.status == "ended" and request.ended_at == frozen_clock.now
    assert permissions.describe_status(request) == "Ended at 09:12: you left the room."
    assert permissions.active_permissions(db.session, frozen_clock.now) == []
    assert audit_actions("permission_request", asked.id)[-1] == "permission.ended"


# Standing permissions -------------------------------------------------------------------------------------


def test_a_covering_standing_permission_approves_at_once(school, frozen_clock):
    today = to_local(frozen_clock.now).date()
    standing = committed(
        permissions.grant_standing_permission,
        school["head"],
        person_id=school["staff"].id,
        personal_device_id=school["phone"].id,
        area_ids=[school["area"].id],
        starts_on=today,
        ends_on=today + timedelta(days=30),
        reason="Medical need",
    )
    asked = ask(school["staff"], school["area"], school["phone"])
    assert asked.status == "approved"
    assert asked.standing_permission_id == standing.id
    assert asked.approved_until == asked.wanted_until
    assert audit_actions("permission_request", asked.id) == ["permission.auto_approved"]
    assert notices_of(school["head"], "permission.requested") == []
    assert permissions.describe_status(fresh(asked)) == "Approved until 10:00 by your standing permission."


def test_a_standing_permission_covers_only_its_device_areas_and_dates(school, frozen_clock):
    today = to_local(frozen_clock.now).date()
    hall = make_area(school["admin"], "Hall")
    second_phone = make_device(school["staff"], model="iPhone SE")
    standing = committed(
        permissions.grant_standing_permission,
        school["head"],
        person_id=school["staff"].id,
        personal_device_id=school["phone"].id,
        area_ids=[school["area"].id],
        starts_on=today + timedelta(days=1),
        ends_on=today + timedelta(days=5),
        reason="Trip week",
    )
    assert ask(school["staff"], school["area"], school["phone"]).status == "pending"  # not started yet
    frozen_clock.advance(days=1)
    assert ask(school["staff"], hall, school["phone"]).status == "pending"  # another area
    assert ask(school["staff"], school["area"], second_phone).status == "pending"  # another device
    assert ask(school["staff"], school["area"], school["phone"]).status == "approved"
    committed(permissions.end_standing_permission, school["head"], standing.id)
    assert ask(school["staff"], school["area"], school["phone"]).status == "pending"  # ended early
    assert audit_actions("standing_permission", standing.id) == ["standing_permission.granted", "standing_permission.ended"]


def test_standing_permission_rules(school, frozen_clock):
    today = to_local(frozen_clock.now).date()
    closed = make_area(school["admin"], "Changing area", AreaRule.CLOSED.value)
    base = {"starts_on": today, "ends_on": today + timedelta(days=1), "reason": "Medical need"}
    with pytest.raises(ValidationFailed) as own:
        committed(permissions.grant_standing_permission, school["head"], person_id=school["head"].id, **base)
    assert "yourself" in own.value.field_errors["person"][0]
    with pytest.raises(ValidationFailed) as shut:
        committed(
            permissions.grant_standing_permission, school["head"], person_id=school["staff"].id, area_ids=[closed.id], **base
        )
    assert "closed" in shut.value.field_errors["areas"][0]
    with pytest.raises(ValidationFailed) as backwards:
        committed(
            permissions.grant_standing_permission,
            school["head"],
            person_id=school["staff"].id,
            starts_on=today,
            ends_on=today - timedelta(days=1),
            reason="x",
        )
    assert "ends_on" in backwards.value.field_errors
    with pytest.raises(Forbidden):
        committed(permissions.grant_standing_permission, school["other"], person_id=school["staff"].id, **base)


# Timed jobs -------------------------------------------------------------------------------------------------


def test_approved_permissions_expire_at_their_end_and_the_job_is_idempotent(school, frozen_clock):
    asked = ask(school["staff"], school["area"], school["phone"])
    committed(permissions.decide, school["head"], asked.id, "approve")
    frozen_clock.advance(minutes=59)
    assert committed(permissions.run_jobs, frozen_clock.now).expired == 0
    assert [r.id for r in permissions.active_permissions(db.session, frozen_clock.now)] == [asked.id]
    frozen_clock.advance(minutes=1)
    assert committed(permissions.run_jobs, frozen_clock.now).expired == 1
    assert committed(permissions.run_jobs, frozen_clock.now).expired == 0
    request = fresh(asked)
    assert request.status == "expired" and request.ended_at == request.approved_until
    assert permissions.describe_status(request) == "Expired at 10:00."
    assert audit_actions("permission_request", asked.id).count("permission.expired") == 1
    assert len(notices_of(school["staff"], "permission.expired")) == 1


def test_pending_requests_nobody_decided_expire_at_their_wanted_end(school, frozen_clock):
    asked = ask(school["staff"], school["area"], school["phone"], duration="end_of_lesson")
    assert to_local(asked.wanted_until).strftime("%H:%M") == "09:50"
    frozen_clock.advance(minutes=50)
    with pytest.raises(Conflict):
        committed(permissions.decide, school["head"], asked.id, "approve")
    report = committed(permissions.run_jobs, frozen_clock.now)
    assert report.expired == 1
    assert fresh(asked).status == "expired"
    assert permissions.describe_status(fresh(asked)) == "Nobody decided before 09:50, so this request has expired."


def test_undecided_requests_escalate_to_delegates_once(school, frozen_clock):
    committed(permissions.set_away, school["deputy"], False)
    asked = ask(school["staff"], school["area"], school["phone"])
    frozen_clock.advance(minutes=4, seconds=59)
    assert committed(permissions.run_jobs, frozen_clock.now).escalated == 0
    frozen_clock.advance(seconds=1)
    assert committed(permissions.run_jobs, frozen_clock.now).escalated == 1
    assert committed(permissions.run_jobs, frozen_clock.now).escalated == 0
    (notice,) = notices_of(school["deputy"], "permission.escalated")
    assert notice.title.startswith("Still waiting: Mr B Clarke")
    assert notices_of(school["head"], "permission.escalated") == []
    assert fresh(asked).escalated_at == frozen_clock.now
    assert audit_actions("permission_request", asked.id) == ["permission.requested", "permission.escalated"]


def test_escalation_minutes_is_a_setting(school, frozen_clock):
    committed(permissions.set_escalation_minutes, school["admin"], 2)
    ask(school["staff"], school["area"], school["phone"])
    frozen_clock.advance(minutes=2)
    assert committed(permissions.run_jobs, frozen_clock.now).escalated == 1
    assert "setting.changed" in audit_actions("setting")
    with pytest.raises(ValidationFailed):
        committed(permissions.set_escalation_minutes, school["admin"], 0)


# Durations --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local_now", "duration", "until", "expected"),
    [
        ("09:00", "end_of_lesson", "", "09:50"),
        ("09:50", "end_of_lesson", "", "10:45"),
        ("15:20", "end_of_lesson", "", "16:20"),  # after the last lesson: an hour
        ("09:00", "one_hour", "", "10:00"),
        ("09:00", "rest_of_day", "", "18:00"),
        ("19:00", "rest_of_day", "", "23:59"),
        ("09:00", "until", "14:20", "14:20"),
    ],
)
def test_how_long(app, frozen_clock, local_now, duration, until, expected):
    hours, minutes = (int(p) for p in local_now.split(":"))
    frozen_clock.set(datetime(2026, 11, 25, hours, minutes, tzinfo=UTC))  # London is on GMT in November
    end = permissions.end_time_for(db.session, duration, frozen_clock.now, until)
    assert to_local(end).strftime("%H:%M") == expected
    assert to_local(end).date() == date(2026, 11, 25)


def test_a_time_that_has_passed_is_refused(app, frozen_clock):
    with pytest.raises(ValidationFailed) as refused:
        permissions.end_time_for(db.session, "until", frozen_clock.now, "08:30")
    assert refused.value.field_errors["until"] == ["That time has already passed; choose a later time."]
    with pytest.raises(ValidationFailed):
        permissions.end_time_for(db.session, "until", frozen_clock.now, "tea time")
    with pytest.raises(ValidationFailed):
        permissions.end_time_for(db.session, "forever", frozen_clock.now)


def test_british_summer_time_is_respected(app, frozen_clock):
    frozen_clock.set(datetime(2026, 6, 10, 8, 0, tzinfo=UTC))  # 09:00 in London
    end = permissions.end_time_for(db.session, "end_of_lesson", frozen_clock.now)
    assert end.astimezone(UTC).strftime("%H:%M") == "08:50"


def test_everything_leaves_a_verifiable_chain(school, frozen_clock):
    asked = ask(school["staff"], school["area"], school["phone"])
    committed(permissions.decide, school["head"], asked.id, "approve")
    frozen_clock.advance(hours=2)
    committed(permissions.run_jobs, frozen_clock.now)
    assert verify_chain(db.session).ok


def test_my_data_includes_my_requests(school):
    from app.services.personal_data import export_person

    asked = ask(school["staff"], school["area"], school["phone"])
    data = export_person(db.session, school["staff"])
    assert [r["id"] for r in data["permissions"]["requests"]] == [asked.id]
    assert data["permissions"]["requests"][0]["area"] == "Year 3 classroom"
    assert export_person(db.session, school["other"])["permissions"]["requests"] == []


def test_the_audit_log_finds_permission_events_by_area_device_and_person(school):
    from app.services.audit_log import AuditFilters, page_of_events

    asked = ask(school["staff"], school["area"], school["phone"])
    committed(permissions.decide, school["head"], asked.id, "approve")

    def actions(**filters) -> list[str]:
        events, _cursor = page_of_events(db.session, AuditFilters(**filters))
        return [e.action for e in events if e.subject_type == "permission_request"]

    assert actions(area=school["area"].id) == ["permission.approved", "permission.requested"]
    assert actions(device=school["phone"].id) == ["permission.approved", "permission.requested"]
    assert actions(people=[school["staff"].id]) == ["permission.approved", "permission.requested"]
    assert actions(area=make_area(school["admin"], "Hall").id) == []
