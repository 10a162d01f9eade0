"""Retention pinned exactly at its edges: what is one second past its period goes and what is exactly at it
stays, open requests and live records are never touched, the audit cut and its checkpoint, the counts and
the audit events a run leaves, the case hold, the published periods and the hourly schedule.

Written for mutation testing (issue 19): each assertion is one that a changed comparison, period, count or
audit field in app/services/retention.py would break. Direct calls with an explicit now, on SQLite; the
rows are put at exact ages with UPDATEs so each edge is tested to the second.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import (
    AuditCheckpoint,
    AuditEvent,
    AuditLink,
    Booking,
    BookingItem,
    LoginAttempt,
    PasswordToken,
    PermissionRequest,
    PersonalDevice,
    RegisteredImei,
    Role,
    StandingPermission,
    User,
    UserSession,
    standing_permission_areas,
)
from app.services import accounts, permissions, retention
from app.services.audit import verify_chain
from app.services.retention import HousekeepingPeriods, RetentionReport, run_retention
from app.services.settings import set_setting
from tests.booking_factories import bookable_asset, make_booking
from tests.factories import make_device, make_user
from tests.permission_factories import ask, committed, make_area

# SQLite only: rows are put at exact ages with SQLite's stored time text; tests/test_retention.py runs
# retention itself on both databases.
pytestmark = pytest.mark.sqlite_only

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # the frozen clock
YEAR_OF_MONTHS = timedelta(days=365)  # 12 months as retention counts them: round(12 * 30.44) days
SECOND = timedelta(seconds=1)


@pytest.fixture
def admin(app, frozen_clock):
    return make_user(Role.ADMIN, Role.APPROVER, Role.OFFICE, name="Mr T Hughes")


def _run(now: datetime = NOW, periods: HousekeepingPeriods | None = None) -> RetentionReport:
    db.session.rollback()
    with write_intent():
        report = run_retention(db.session, now, periods)
        db.session.commit()
    return report


def _set(admin, key: str, value) -> None:
    db.session.rollback()
    with write_intent():
        set_setting(db.session, admin, key, value)
        db.session.commit()


def _stamp(value: datetime) -> str:
    """How SQLite keeps a UTC time."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _execute(statement, **values) -> None:
    db.session.rollback()
    db.session.execute(sa.text(statement), values)
    db.session.commit()


def _ids(model) -> set:
    db.session.rollback()
    return set(db.session.scalars(sa.select(model.id)))


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def _request_aged(admin, area, status: str, age: timedelta) -> int:
    """A request of ``status`` created ``age`` before NOW (rows put at exact ages by hand)."""
    person = make_user()
    request = ask(person, area, make_device(person))
    _execute(
        "UPDATE permission_requests SET status = :status, created_at = :at WHERE id = :id",
        status=status,
        at=_stamp(NOW - age),
        id=request.id,
    )
    return request.id


# Permission requests and bookings -----------------------------------------------------------------------


def test_closed_requests_go_a_second_past_their_period_open_ones_stay(admin):
    area = make_area(admin)
    at_the_edge = _request_aged(admin, area, "denied", YEAR_OF_MONTHS)
    gone = {
        status: _request_aged(admin, area, status, YEAR_OF_MONTHS + SECOND)
        for status in ("denied", "withdrawn", "expired", "ended")
    }
    kept_open = {status: _request_aged(admin, area, status, YEAR_OF_MONTHS * 3) for status in ("pending", "approved")}
    report = _run()
    assert report.permission_requests == 4
    assert _ids(PermissionRequest) == {at_the_edge, *kept_open.values()}
    (event,) = _events("retention.erased")
    assert (event.actor_id, event.subject_type, event.subject_id) == (None, "retention", "")
    assert json.loads(event.details) == {
        "audit_events": 0,
        "bookings": 0,
        "held": False,
        "leaver_devices": 0,
        "leaver_requests": 0,
        "permission_requests": 4,
        "standing_permissions": 0,
    }
    assert _run().permission_requests == 0 and len(_events("retention.erased")) == 1  # nothing more: no event
    assert gone  # (named for the reader)


def test_the_request_period_is_the_setting_in_months(admin):
    area = make_area(admin)
    _set(admin, "retention.permission_request_months", 6)
    six_months = timedelta(days=183)  # round(6 * 30.44)
    kept = _request_aged(admin, area, "denied", six_months)
    _request_aged(admin, area, "denied", six_months + SECOND)
    assert _run().permission_requests == 1
    assert _ids(PermissionRequest) == {kept}


def test_bookings_that_ended_before_the_period_go_with_their_items(admin):
    asset = bookable_asset(admin)
    old = make_booking(admin, day=date(2026, 11, 26), asset_id=asset.id)
    edge = make_booking(admin, day=date(2026, 11, 27), asset_id=asset.id)
    recent = make_booking(admin, day=date(2026, 11, 30), asset_id=asset.id)
    old_id, edge_id, recent_id = old.id, edge.id, recent.id
    for booking_id, ends in ((old_id, NOW - YEAR_OF_MONTHS - SECOND), (edge_id, NOW - YEAR_OF_MONTHS)):
        _execute(
            "UPDATE bookings SET starts_at = :starts, ends_at = :ends WHERE id = :id",
            starts=_stamp(ends - timedelta(hours=1)),
            ends=_stamp(ends),
            id=booking_id,
        )
    report = _run()
    assert report.bookings == 1
    assert _ids(Booking) == {edge_id, recent_id}
    assert {item.booking_id for item in db.session.scalars(sa.select(BookingItem))} == {edge_id, recent_id}
    assert json.loads(_events("retention.erased")[0].details)["bookings"] == 1


def test_more_bookings_than_one_statement_may_name_all_go(admin):
    # Erased in chunks of 500 ids (SQLite's parameter limit): 1001 old bookings need three, none left out.
    asset = bookable_asset(admin)
    old_id = make_booking(admin, day=date(2026, 11, 26), asset_id=asset.id).id
    ends = NOW - YEAR_OF_MONTHS - SECOND
    _execute(
        "UPDATE bookings SET starts_at = :starts, ends_at = :ends WHERE id = :id",
        starts=_stamp(ends - timedelta(hours=1)),
        ends=_stamp(ends),
        id=old_id,
    )
    columns = ", ".join(column.name for column in Booking.__table__.columns if column.name != "id")
    _execute(
        f"WITH RECURSIVE copies(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM copies WHERE n < 1000) "
        f"INSERT INTO bookings ({columns}) SELECT {columns} FROM bookings, copies WHERE bookings.id = :id",
        id=old_id,
    )
    assert len(_ids(Booking)) == 1001
    assert _run().bookings == 1001
    assert _ids(Booking) == set()


# Leavers' devices ------------------------------------------------------------------------------------


def test_a_leavers_devices_go_the_set_days_after_deactivation_with_what_names_them(admin, frozen_clock):
    leaver, stayer = make_user(name="Leaver"), make_user(name="Stayer")
    phone, spare, stayers_phone = make_device(leaver), make_device(leaver, model="Pixel 8"), make_device(stayer)
    phone_id, spare_id, stayers_phone_id = phone.id, spare.id, stayers_phone.id
    area = make_area(admin)
    asked_id = ask(leaver, area, phone).id
    stayer_asked_id = ask(stayer, area, stayers_phone).id
    standing = committed(
        permissions.grant_standing_permission,
        admin,
        person_id=leaver.id,
        personal_device_id=phone_id,
        area_ids=[area.id],
        starts_on=date(2026, 11, 25),
        ends_on=date(2026, 12, 25),
        reason="Medical need",
    ).id
    committed(accounts.deactivate_user, admin, db.session.get(User, leaver.id))
    deactivated = db.session.get(User, leaver.id).deactivated_at
    assert _run(deactivated + timedelta(days=30) - SECOND).leaver_devices == 0
    report = _run(deactivated + timedelta(days=30))
    assert (report.leaver_devices, report.leaver_requests, report.standing_permissions) == (2, 1, 1)
    assert _ids(PersonalDevice) == {stayers_phone_id}
    assert {row.device_id for row in db.session.scalars(sa.select(RegisteredImei))} == {stayers_phone_id}
    assert _ids(PermissionRequest) == {stayer_asked_id}
    assert _ids(StandingPermission) == set()
    assert db.session.execute(sa.select(standing_permission_areas)).all() == []
    details = json.loads(_events("retention.erased")[-1].details)
    assert (details["leaver_devices"], details["leaver_requests"], details["standing_permissions"]) == (2, 1, 1)
    assert asked_id not in _ids(PermissionRequest) and standing not in _ids(StandingPermission)
    assert {phone_id, spare_id}.isdisjoint(_ids(PersonalDevice))


def test_the_leaver_period_is_the_setting_and_active_people_keep_their_devices(admin):
    _set(admin, "retention.leaver_device_days", 5)
    leaver, stayer = make_user(), make_user()
    phone_id, kept_id = make_device(leaver).id, make_device(stayer).id
    committed(accounts.deactivate_user, admin, db.session.get(User, leaver.id))
    deactivated = db.session.get(User, leaver.id).deactivated_at
    report = _run(deactivated + timedelta(days=5))
    assert (report.leaver_devices, report.leaver_requests, report.standing_permissions) == (1, 0, 0)
    assert _ids(PersonalDevice) == {kept_id}
    assert phone_id not in _ids(PersonalDevice)


# The audit cut -------------------------------------------------------------------------------------------


def test_audit_events_are_kept_for_ever_by_default(admin, frozen_clock):
    assert _run(NOW + timedelta(days=365 * 50)).audit_events == 0
    assert db.session.scalar(sa.select(AuditCheckpoint)) is None


def test_events_older_than_the_years_are_cut_behind_a_checkpoint(admin, frozen_clock):
    _set(admin, "retention.audit_event_years", 1)
    old_seqs = sorted(db.session.scalars(sa.select(AuditEvent.seq)))
    old_head = db.session.scalar(sa.select(AuditEvent.hash).where(AuditEvent.seq == old_seqs[-1]))
    frozen_clock.advance(seconds=5)
    make_user()  # newer events, kept
    year = timedelta(days=365)  # round(1 * 365.25) days
    assert _run(NOW + year).audit_events == 0  # every event is at or after the cut-off: nothing to cut
    now = NOW + year + SECOND
    report = _run(now)
    assert report.audit_events == len(old_seqs)
    checkpoint = db.session.scalar(sa.select(AuditCheckpoint))
    assert (checkpoint.up_to_seq, checkpoint.hash, checkpoint.events_removed, checkpoint.created_at) == (
        old_seqs[-1],
        old_head,
        len(old_seqs),
        now,
    )
    vouching = json.loads(db.session.get(AuditEvent, checkpoint.event_seq).details)
    assert vouching["before"] == (now - year).isoformat(timespec="microseconds")
    assert min(db.session.scalars(sa.select(AuditEvent.seq))) == old_seqs[-1] + 1
    assert db.session.scalar(sa.select(sa.func.min(AuditLink.seq))) > old_seqs[-1]
    assert json.loads(_events("retention.erased")[-1].details)["audit_events"] == len(old_seqs)
    assert verify_chain(db.session).ok


# Housekeeping ----------------------------------------------------------------------------------------


def test_sessions_attempts_and_links_go_at_their_edges_audited_as_counts(admin):
    person = make_user()
    periods = HousekeepingPeriods(session_lifetime=timedelta(hours=2), sign_in_window=timedelta(minutes=10))
    sessions = {
        "ended": (NOW - timedelta(minutes=1), NOW - SECOND),
        "at_lifetime": (NOW - timedelta(hours=2), None),
        "live": (NOW - timedelta(hours=2) + SECOND, None),
    }
    for key, (created, ended) in sessions.items():
        _execute(
            "INSERT INTO user_sessions (id, user_id, created_at, ended_at) VALUES (:id, :user, :created, :ended)",
            id=key,
            user=person.id,
            created=_stamp(created),
            ended=ended and _stamp(ended),
        )
    attempt_edge = NOW - timedelta(minutes=10) - timedelta(days=1)
    for key, at in (("old", attempt_edge - SECOND), ("edge", attempt_edge)):
        _execute(
            "INSERT INTO login_attempts (throttle_key, attempted_at, succeeded) VALUES (:key, :at, 0)", key=key, at=_stamp(at)
        )
    links = {"used": (NOW + timedelta(days=3), NOW - SECOND), "expired": (NOW, None), "live": (NOW + SECOND, None)}
    for key, (expires, used) in links.items():
        _execute(
            "INSERT INTO password_tokens (user_id, token_hash, created_at, expires_at, used_at) "
            "VALUES (:user, :hash, :created, :expires, :used)",
            user=person.id,
            hash=key,
            created=_stamp(NOW - timedelta(days=1)),
            expires=_stamp(expires),
            used=used and _stamp(used),
        )
    report = _run(NOW, periods)
    assert (report.sessions, report.sign_in_attempts, report.password_links) == (2, 1, 2)
    assert _ids(UserSession) == {"live"}
    assert set(db.session.scalars(sa.select(LoginAttempt.throttle_key))) == {"edge"}
    assert set(db.session.scalars(sa.select(PasswordToken.token_hash))) == {"live"}
    for action, kind, count in (
        ("retention.sessions_removed", "sessions", 2),
        ("retention.sign_in_attempts_removed", "sign_in_attempts", 1),
        ("retention.password_links_removed", "password_links", 2),
    ):
        (event,) = _events(action)
        assert (event.actor_id, event.subject_type, event.subject_id, json.loads(event.details)) == (
            None,
            "retention",
            kind,
            {"count": count},
        )
    assert _events("retention.erased") == []
    again = _run(NOW, periods)
    assert (again.sessions, again.sign_in_attempts, again.password_links) == (0, 0, 0)
    assert len(_events("retention.sessions_removed")) == 1


def test_without_periods_the_configuration_is_read(admin, app):
    app.config["SESSION_ABSOLUTE_HOURS"] = 3
    app.config["LOGIN_WINDOW_MINUTES"] = 20
    assert HousekeepingPeriods.current() == HousekeepingPeriods(timedelta(hours=3), timedelta(minutes=20))
    assert HousekeepingPeriods.from_config({}) == HousekeepingPeriods(timedelta(hours=12), timedelta(minutes=15))
    assert HousekeepingPeriods() == HousekeepingPeriods(timedelta(hours=12), timedelta(minutes=15))
    person = make_user()
    _execute(
        "INSERT INTO user_sessions (id, user_id, created_at) VALUES ('old', :user, :created)",
        user=person.id,
        created=_stamp(NOW - timedelta(hours=3)),
    )
    _execute(
        "INSERT INTO user_sessions (id, user_id, created_at) VALUES ('young', :user, :created)",
        user=person.id,
        created=_stamp(NOW - timedelta(hours=3) + SECOND),
    )
    assert _run(NOW).sessions == 1
    assert _ids(UserSession) == {"young"}


def test_outside_an_application_the_default_periods_are_used():
    assert HousekeepingPeriods.current() == HousekeepingPeriods(timedelta(hours=12), timedelta(minutes=15))


# The case hold, the published periods and the schedule -------------------------------------------------


def test_a_case_hold_erases_nothing_and_blank_is_no_hold(admin):
    area = make_area(admin)
    old = _request_aged(admin, area, "denied", YEAR_OF_MONTHS * 2)
    _set(admin, "retention.case_hold", "Allegation 2026-14")
    report = _run()
    assert report == RetentionReport(held=True)
    assert old in _ids(PermissionRequest) and _events("retention.erased") == []
    _set(admin, "retention.case_hold", "   ")
    report = _run()
    assert (report.held, report.permission_requests) == (False, 1)


def test_the_published_periods_are_the_enforced_ones(admin, app):
    _set(admin, "retention.permission_request_months", 6)
    _set(admin, "retention.leaver_device_days", 45)
    _set(admin, "retention.audit_event_years", 7)
    app.config["SESSION_ABSOLUTE_HOURS"] = 9
    app.config["LOGIN_WINDOW_MINUTES"] = 60
    assert retention.published_periods(db.session) == retention.PublishedPeriods(6, 45, 7, 9, 25)
    app.config["LOGIN_WINDOW_MINUTES"] = 61
    assert retention.published_periods(db.session).sign_in_attempt_hours == 26  # rounded up
    app.config["LOGIN_WINDOW_MINUTES"] = 36 * 60 + 1  # kept 60 hours and a minute: the notice says 61
    assert retention.published_periods(db.session).sign_in_attempt_hours == 61


def test_the_scheduled_run_is_at_most_hourly(admin, monkeypatch):
    monkeypatch.setattr(retention, "_last_scheduled_run", {})
    db.session.rollback()
    with write_intent():
        assert isinstance(retention.scheduled_retention(db.session, NOW), RetentionReport)
        assert retention.scheduled_retention(db.session, NOW + timedelta(minutes=59, seconds=59)) is None
        assert retention._last_scheduled_run == {"at": NOW}
        assert isinstance(retention.scheduled_retention(db.session, NOW + timedelta(hours=1)), RetentionReport)
        assert retention._last_scheduled_run == {"at": NOW + timedelta(hours=1)}
        db.session.commit()
