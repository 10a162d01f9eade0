"""Retention with a controllable clock: what is past its period is gone, the rest stays, verify passes."""

from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import (
    AuditCheckpoint,
    AuditEvent,
    LoginAttempt,
    PasswordToken,
    PermissionRequest,
    PersonalDevice,
    RegisteredImei,
    Role,
    User,
    UserSession,
)
from app.scheduler import run_timed_jobs
from app.services import accounts, areas, permissions, retention
from app.services.audit import verify_chain
from app.services.retention import run_retention
from app.services.settings import set_setting
from tests.conftest import csrf_token
from tests.factories import PASSWORD, make_device, make_user, sign_in


def _ask(person, device, area):
    with write_intent():
        request = permissions.request_permission(
            db.session, person, area, device_key=f"personal-{device.id}", reason="urgent_call", duration="one_hour"
        )
        db.session.commit()
    return request.id


def _withdraw(person, request_id):
    with write_intent():
        permissions.withdraw(db.session, person, request_id)
        db.session.commit()


def _run(now):
    with write_intent():
        report = run_retention(db.session, now)
        db.session.commit()
    return report


def _count(model, *conditions):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*conditions))


def test_old_requests_and_leavers_devices_go_the_rest_stays_and_the_chain_verifies(app, frozen_clock):
    admin, stayer, leaver = make_user(Role.ADMIN), make_user(name="Stayer"), make_user(name="Leaver")
    stayer_phone, leaver_phone = make_device(stayer), make_device(leaver)
    leaver_digits = leaver_phone.imei1[-4:]
    with write_intent():
        hall = areas.create_area(db.session, admin, name="Hall", rule="ask")
        db.session.commit()
    old_request = _ask(stayer, stayer_phone, hall)
    _withdraw(stayer, old_request)
    frozen_clock.advance(days=380)
    recent_request = _ask(stayer, stayer_phone, hall)
    _withdraw(stayer, recent_request)
    leaver_request = _ask(leaver, leaver_phone, hall)
    _withdraw(leaver, leaver_request)
    with write_intent():
        accounts.deactivate_user(db.session, admin, db.session.get(User, leaver.id))
        db.session.commit()

    frozen_clock.advance(days=29)
    early = _run(frozen_clock.now)
    assert early.permission_requests == 1 and early.leaver_devices == 0
    assert db.session.get(PermissionRequest, old_request) is None
    assert db.session.get(PermissionRequest, recent_request) is not None
    assert db.session.get(PersonalDevice, leaver_phone.id) is not None

    frozen_clock.advance(days=2)
    later = _run(frozen_clock.now)
    assert later.leaver_devices == 1 and later.leaver_requests == 1
    assert db.session.get(PersonalDevice, leaver_phone.id) is None
    assert _count(RegisteredImei, RegisteredImei.device_id == leaver_phone.id) == 0
    assert db.session.get(PermissionRequest, leaver_request) is None
    assert db.session.get(PersonalDevice, stayer_phone.id) is not None
    assert db.session.get(User, leaver.id) is not None, "the account stays: the audit log points at it"

    erased = db.session.scalars(sa.select(AuditEvent.details).where(AuditEvent.action == "retention.erased")).all()
    assert len(erased) == 2
    assert all(leaver_digits not in details for details in erased)
    assert verify_chain(db.session).ok
    assert _run(frozen_clock.now).permission_requests == 0, "a second run erases nothing more"


def test_a_case_hold_stops_retention(app, frozen_clock):
    admin, person = make_user(Role.ADMIN), make_user()
    phone = make_device(person)
    with write_intent():
        hall = areas.create_area(db.session, admin, name="Hall", rule="ask")
        set_setting(db.session, admin, "retention.case_hold", "Allegation 2026-14: keep everything")
        db.session.commit()
    request_id = _ask(person, phone, hall)
    _withdraw(person, request_id)
    frozen_clock.advance(days=800)
    assert _run(frozen_clock.now).held is True
    assert db.session.get(PermissionRequest, request_id) is not None


def test_old_audit_events_are_cut_behind_a_checkpoint_and_the_rest_verifies(app, frozen_clock):
    admin = make_user(Role.ADMIN)
    make_device(admin)
    with write_intent():
        set_setting(db.session, admin, "retention.audit_event_years", 6)
        db.session.commit()
    old_events = _count(AuditEvent)
    frozen_clock.advance(days=365 * 6 + 10)
    make_device(make_user())
    report = _run(frozen_clock.now)
    assert report.audit_events == old_events
    checkpoint = db.session.scalar(sa.select(AuditCheckpoint))
    assert checkpoint.up_to_seq == old_events
    remaining = db.session.scalars(sa.select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
    assert remaining[0] == old_events + 1
    report = verify_chain(db.session)
    assert report.ok, (report.problem, checkpoint.up_to_seq, remaining[:3])


def test_events_newer_than_the_checkpoint_still_cannot_be_deleted(app, frozen_clock):
    admin = make_user(Role.ADMIN)
    with write_intent():
        set_setting(db.session, admin, "retention.audit_event_years", 1)
        db.session.commit()
    frozen_clock.advance(days=400)
    make_user()
    _run(frozen_clock.now)
    newest = db.session.scalar(sa.select(sa.func.max(AuditEvent.seq)))
    try:
        db.session.execute(sa.delete(AuditEvent).where(AuditEvent.seq == newest))
        db.session.flush()
        deleted = True
    except sa.exc.DatabaseError:
        deleted = False
    db.session.rollback()
    assert deleted is False
    try:
        db.session.execute(sa.delete(AuditCheckpoint))
        db.session.flush()
        removed_checkpoint = True
    except sa.exc.DatabaseError:
        removed_checkpoint = False
    db.session.rollback()
    assert removed_checkpoint is False


def test_retention_command(app):
    result = app.test_cli_runner().invoke(args=["retention", "run"])
    assert result.exit_code == 0 and "Erased 0 permission requests" in result.output


def test_admin_changes_settings_with_clear_messages_and_audit(client):
    admin = make_user(Role.ADMIN)
    deputy = make_user(Role.APPROVER, name="Mr D Okafor")
    sign_in(client, admin)
    token = csrf_token(client, "/admin/settings")
    bad = client.post(
        "/admin/settings",
        data={
            "csrf_token": token,
            "school.name": "St Mary's",
            "permissions.escalation_minutes": "soon",
            "permissions.day_ends": "25:00",
        },
    )
    page = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "Enter a whole number" in page and "HH:MM" in page
    assert 'value="soon"' in page
    good = client.post(
        "/admin/settings",
        data={
            "csrf_token": token,
            "school.name": "St Mary's Primary",
            "permissions.escalation_minutes": "7",
            "permissions.delegate_ids": [str(deputy.id)],
            "permissions.lesson_ends": "09:50, 10:45, 15:15",
            "retention.leaver_device_days": "45",
        },
    )
    assert good.status_code == 302
    assert "St Mary&#39;s Primary" in client.get("/").get_data(as_text=True)
    changes = db.session.scalars(sa.select(AuditEvent.subject_id).where(AuditEvent.action == "setting.changed")).all()
    assert {"school.name", "permissions.escalation_minutes", "permissions.delegate_ids", "retention.leaver_device_days"} <= set(
        changes
    )


def test_only_admins_see_settings(client):
    sign_in(client, make_user(Role.APPROVER, Role.OFFICE))
    assert client.get("/admin/settings").status_code == 403


def test_leavers_are_erased_only_after_the_setting(app, frozen_clock):
    admin, leaver = make_user(Role.ADMIN), make_user()
    phone_id = make_device(leaver).id
    with write_intent():
        set_setting(db.session, admin, "retention.leaver_device_days", 60)
        accounts.deactivate_user(db.session, admin, db.session.get(User, leaver.id))
        db.session.commit()
    frozen_clock.advance(days=45)
    assert _run(frozen_clock.now).leaver_devices == 0
    frozen_clock.advance(days=16)
    assert _run(frozen_clock.now).leaver_devices == 1
    assert db.session.get(PersonalDevice, phone_id) is None


# Housekeeping: sessions, sign-in attempts and password links that have done their job.


def _sign_in(user, password=PASSWORD, ip="192.0.2.7"):
    with write_intent():
        result = accounts.sign_in(
            db.session,
            email=user.email,
            password=password,
            ip=ip,
            user_agent="Firefox",
            max_failures=5,
            window=timedelta(minutes=15),
        )
        db.session.commit()
    return result


def _actions(action):
    rows = db.session.scalars(sa.select(AuditEvent.details).where(AuditEvent.action == action).order_by(AuditEvent.seq))
    return [json.loads(details) for details in rows]


def test_ended_and_timed_out_sessions_go_live_ones_stay_audited_once_as_a_count(app, frozen_clock):
    person = make_user()
    signed_out = _sign_in(person).session_id
    with write_intent():
        accounts.sign_out(db.session, db.session.get(User, person.id), signed_out)
        db.session.commit()
    timed_out = _sign_in(person).session_id
    frozen_clock.advance(hours=1)
    old_live = _sign_in(person).session_id
    frozen_clock.advance(hours=11, minutes=30)
    fresh = _sign_in(person).session_id
    assert _count(UserSession) == 4

    report = _run(frozen_clock.now)  # timed_out is 12.5 hours old; old_live 11.5
    assert report.sessions == 2
    assert {row.id for row in db.session.scalars(sa.select(UserSession))} == {old_live, fresh}
    assert signed_out not in {timed_out, old_live, fresh}
    assert _actions("retention.sessions_removed") == [{"count": 2}]
    assert _actions("retention.erased") == [], "housekeeping alone is not a retention-period erasure"

    assert _run(frozen_clock.now).sessions == 0
    assert len(_actions("retention.sessions_removed")) == 1, "a run that removes nothing audits nothing"
    frozen_clock.advance(hours=1)
    assert _run(frozen_clock.now).sessions == 1
    assert [details["count"] for details in _actions("retention.sessions_removed")] == [2, 1]
    assert verify_chain(db.session).ok


def test_sign_in_attempts_go_a_day_after_the_window_and_throttling_still_counts(app, frozen_clock):
    person, other = make_user(), make_user()
    for _ in range(3):
        _sign_in(other, password="wrong")
    frozen_clock.advance(days=1, minutes=16)
    for _ in range(5):
        _sign_in(person, password="wrong")
    report = _run(frozen_clock.now)
    assert report.sign_in_attempts == 3
    assert _count(LoginAttempt) == 5
    assert _sign_in(person).throttled is True, "the window's failures are kept, so throttling still holds"
    assert _actions("retention.sign_in_attempts_removed") == [{"count": 3}]


def test_used_and_expired_password_links_go_the_live_one_still_works(app, frozen_clock):
    admin, newcomer, leaver, resetter = make_user(Role.ADMIN), make_user(), make_user(), make_user()
    with write_intent():
        first = accounts.issue_password_token(db.session, admin, db.session.get(User, newcomer.id))
        accounts.issue_password_token(db.session, admin, db.session.get(User, newcomer.id))  # revokes first
        used = accounts.issue_password_token(db.session, admin, db.session.get(User, resetter.id), "password_reset")
        db.session.commit()
    with write_intent():
        accounts.set_password_with_token(db.session, used, "a brand new long passphrase")
        db.session.commit()
    with write_intent():
        stale = accounts.issue_password_token(db.session, admin, db.session.get(User, leaver.id))
        db.session.commit()
    frozen_clock.advance(days=6)
    with write_intent():
        live = accounts.issue_password_token(db.session, admin, db.session.get(User, admin.id), "password_reset")
        db.session.commit()
    frozen_clock.advance(days=2)  # every link but the admin's has passed its 7 days
    assert _count(PasswordToken) == 5

    report = _run(frozen_clock.now)
    assert report.password_links == 4
    assert _count(PasswordToken) == 1
    assert accounts.find_password_token(db.session, live) is not None
    assert all(accounts.find_password_token(db.session, token) is None for token in (first, used, stale))
    assert _actions("retention.password_links_removed") == [{"count": 4}]


def test_a_case_hold_keeps_sessions_attempts_and_links_too(app, frozen_clock):
    admin, person = make_user(Role.ADMIN), make_user()
    with write_intent():
        set_setting(db.session, admin, "retention.case_hold", "Allegation 2026-15: keep everything")
        accounts.issue_password_token(db.session, admin, db.session.get(User, person.id))
        db.session.commit()
    _sign_in(person)
    _sign_in(person, password="wrong")
    frozen_clock.advance(days=30)
    report = _run(frozen_clock.now)
    assert report.held is True
    assert (report.sessions, report.sign_in_attempts, report.password_links) == (0, 0, 0)
    assert (_count(UserSession), _count(LoginAttempt), _count(PasswordToken)) == (1, 2, 1)
    with write_intent():
        set_setting(db.session, admin, "retention.case_hold", "")
        db.session.commit()
    report = _run(frozen_clock.now)
    assert (report.sessions, report.sign_in_attempts, report.password_links) == (1, 2, 1)


def test_the_hourly_job_reads_the_session_timeout_from_the_configuration(app, frozen_clock):
    person = make_user()
    _sign_in(person)
    app.config["SESSION_ABSOLUTE_HOURS"] = 2
    frozen_clock.advance(hours=2, minutes=1)
    retention._last_scheduled_run.clear()
    results = run_timed_jobs(db.session, frozen_clock.now, names=["retention"])
    assert results["retention"].sessions == 1
    assert _count(UserSession) == 0


def test_the_retention_command_does_the_housekeeping(app, frozen_clock):
    person = make_user()
    _sign_in(person, password="wrong")
    frozen_clock.advance(days=3)
    result = app.test_cli_runner().invoke(args=["retention", "run"])
    assert result.exit_code == 0, result.output
    assert _count(LoginAttempt) == 0
    assert _actions("retention.sign_in_attempts_removed") == [{"count": 1}]


def test_the_privacy_notice_states_the_periods_that_are_enforced(app, client):
    admin = make_user(Role.ADMIN)
    with write_intent():
        set_setting(db.session, admin, "retention.permission_request_months", 6)
        set_setting(db.session, admin, "retention.leaver_device_days", 45)
        set_setting(db.session, admin, "retention.audit_event_years", 7)
        db.session.commit()
    page = client.get("/privacy").get_data(as_text=True)
    assert "kept for 6 months, then erased" in page
    assert "erased 45 days after your account is deactivated" in page
    assert "audit log is kept for 7 years" in page
    hours = app.config.get("SESSION_ABSOLUTE_HOURS", 12)
    assert f"for {hours} hours at most" in page and "failed sign-in attempts for 25 hours" in page
