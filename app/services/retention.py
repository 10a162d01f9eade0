"""Retention (DESIGN.md section 7): data ages out as the settings say, and the audit chain still verifies.

- Permission requests older than their period are erased (their audit events stay); equipment bookings
  that ended longer ago than the same period are erased with their items.
- A leaver's personal devices, IMEIs included, are erased a set number of days after deactivation,
  with anything that names those devices.
- Audit events older than the audit period (0 = keep for ever) are cut behind a checkpoint that is first
  appended to the chain as an ``audit.checkpoint`` event, so what remains still verifies from the
  checkpoint's hash and a checkpoint the chain does not vouch for is rejected.
Housekeeping of account records that have done their job (they hold IP addresses and browsers):
- signed-in sessions that were ended, or are past the absolute session timeout;
- sign-in attempts older than the throttling window plus a day (throttling reads only the window);
- password links that were used or have expired (only their hashes were kept; a link that is gone
  gets the same "expired or already used" answer as one that is spent).

A case hold stops all of it, housekeeping included: the hold promises that retention erases nothing,
and who was signed in from where, and who tried to sign in, can be what an investigation needs. The run
audits what it erased, as counts, never the erased data: one ``retention.erased`` event for the
retention periods, and one event per kind of housekeeping that removed anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app, has_app_context
from sqlalchemy.orm import Session

from app.database import rows_changed
from app.models import (
    AuditEvent,
    AuditLink,
    Booking,
    BookingItem,
    LoginAttempt,
    PasswordToken,
    PermissionRequest,
    PersonalDevice,
    RegisteredImei,
    RequestStatus,
    StandingPermission,
    User,
    UserSession,
    standing_permission_areas,
)
from app.services.audit import record_audit_event, record_checkpoint
from app.services.settings import define_setting, get_setting

REQUEST_MONTHS = define_setting("retention.permission_request_months", 12, "Keep permission requests for (months)")
LEAVER_DEVICE_DAYS = define_setting("retention.leaver_device_days", 30, "Erase a leaver's personal devices after (days)")
AUDIT_YEARS = define_setting("retention.audit_event_years", 0, "Keep audit events for (years; 0 keeps them for ever)")
CASE_HOLD = define_setting("retention.case_hold", "", "Case hold: while this holds a reason, retention erases nothing")

OPEN_STATUSES = (RequestStatus.PENDING.value, RequestStatus.APPROVED.value)
# Sign-in attempts are kept this long past the throttling window: a window widened in the
# configuration still counts recent failures, and today's throttling can be looked into today.
SIGN_IN_ATTEMPT_MARGIN = timedelta(days=1)
_ERASED = ("permission_requests", "leaver_devices", "leaver_requests", "standing_permissions", "bookings", "audit_events")


@dataclass(frozen=True)
class HousekeepingPeriods:
    """How long account records live, from the configuration that also enforces them."""

    session_lifetime: timedelta = timedelta(hours=12)
    sign_in_window: timedelta = timedelta(minutes=15)

    @classmethod
    def from_config(cls, config) -> HousekeepingPeriods:
        return cls(
            session_lifetime=timedelta(hours=int(config.get("SESSION_ABSOLUTE_HOURS", 12))),
            sign_in_window=timedelta(minutes=int(config.get("LOGIN_WINDOW_MINUTES", 15))),
        )

    @classmethod
    def current(cls) -> HousekeepingPeriods:
        return cls.from_config(current_app.config) if has_app_context() else cls()


@dataclass
class RetentionReport:
    permission_requests: int = 0
    leaver_devices: int = 0
    leaver_requests: int = 0
    standing_permissions: int = 0
    bookings: int = 0
    audit_events: int = 0
    sessions: int = 0
    sign_in_attempts: int = 0
    password_links: int = 0
    held: bool = False


def _months_ago(now: datetime, months: int) -> datetime:
    return now - timedelta(days=round(months * 30.44))


def _erase_requests(session: Session, condition) -> int:
    ids = list(session.scalars(sa.select(PermissionRequest.id).where(condition)))
    if ids:
        session.execute(sa.delete(PermissionRequest).where(PermissionRequest.id.in_(ids)))
    return len(ids)


def _erase_bookings(session: Session, before: datetime) -> int:
    """Bookings (any status) that ended before the cut-off, with their items; the loans they became stay."""
    ids = list(session.scalars(sa.select(Booking.id).where(Booking.ends_at < before)))
    for start in range(0, len(ids), 500):  # within SQLite's parameter limit
        chunk = ids[start : start + 500]
        session.execute(sa.delete(BookingItem).where(BookingItem.booking_id.in_(chunk)))
        session.execute(sa.delete(Booking).where(Booking.id.in_(chunk)))
    return len(ids)


def _erase_leaver_devices(session: Session, now: datetime, report: RetentionReport) -> None:
    cutoff = now - timedelta(days=int(get_setting(session, LEAVER_DEVICE_DAYS.key)))
    leavers = sa.select(User.id).where(User.is_active_account.is_(False), User.deactivated_at <= cutoff)
    device_ids = list(session.scalars(sa.select(PersonalDevice.id).where(PersonalDevice.owner_id.in_(leavers))))
    if not device_ids:
        return
    report.leaver_requests += _erase_requests(session, PermissionRequest.personal_device_id.in_(device_ids))
    standing_ids = list(
        session.scalars(sa.select(StandingPermission.id).where(StandingPermission.personal_device_id.in_(device_ids)))
    )
    if standing_ids:
        session.execute(
            sa.delete(standing_permission_areas).where(standing_permission_areas.c.standing_permission_id.in_(standing_ids))
        )
        session.execute(sa.delete(StandingPermission).where(StandingPermission.id.in_(standing_ids)))
    session.execute(sa.delete(RegisteredImei).where(RegisteredImei.device_id.in_(device_ids)))
    session.execute(sa.delete(PersonalDevice).where(PersonalDevice.id.in_(device_ids)))
    report.leaver_devices = len(device_ids)
    report.standing_permissions = len(standing_ids)


def _cut_audit_events(session: Session, now: datetime) -> int:
    years = int(get_setting(session, AUDIT_YEARS.key) or 0)
    if years <= 0:
        return 0
    cutoff = now - timedelta(days=round(years * 365.25))
    last = session.execute(
        sa.select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.occurred_at < cutoff).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    if last is None:
        return 0
    removed = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.seq <= last.seq)) or 0
    # The chain vouches for the cut before it is made; the database refuses the deletes below otherwise.
    record_checkpoint(session, up_to_seq=last.seq, replaced_hash=last.hash, before=cutoff, events_removed=removed, now=now)
    session.execute(sa.delete(AuditLink).where(AuditLink.seq <= last.seq))
    session.execute(sa.delete(AuditEvent).where(AuditEvent.seq <= last.seq))
    return removed


def _remove(session: Session, model, key, condition) -> int:
    """Delete the rows matching ``condition``, skipping rows another transaction holds (next run takes them).

    One statement whatever the count (no id list to outgrow SQLite's parameter limit); the
    ``FOR UPDATE SKIP LOCKED`` subquery keeps this job from waiting behind a sign-in or a password
    change while the tick may already hold the audit lock (CONTRIBUTING's lock order).
    """
    doomed = sa.select(key).where(condition).with_for_update(skip_locked=True)
    result = session.execute(
        sa.delete(model).where(key.in_(doomed.scalar_subquery())), execution_options={"synchronize_session": False}
    )
    return rows_changed(result)


def _housekeeping(session: Session, now: datetime, periods: HousekeepingPeriods, report: RetentionReport) -> None:
    report.sessions = _remove(
        session,
        UserSession,
        UserSession.id,
        sa.or_(UserSession.ended_at.is_not(None), UserSession.created_at <= now - periods.session_lifetime),
    )
    report.sign_in_attempts = _remove(
        session, LoginAttempt, LoginAttempt.id, LoginAttempt.attempted_at < now - periods.sign_in_window - SIGN_IN_ATTEMPT_MARGIN
    )
    report.password_links = _remove(
        session, PasswordToken, PasswordToken.id, sa.or_(PasswordToken.used_at.is_not(None), PasswordToken.expires_at <= now)
    )
    for kind, action in (
        ("sessions", "retention.sessions_removed"),
        ("sign_in_attempts", "retention.sign_in_attempts_removed"),
        ("password_links", "retention.password_links_removed"),
    ):
        if count := getattr(report, kind):
            record_audit_event(session, None, action, "retention", kind, {"count": count})


@dataclass(frozen=True)
class PublishedPeriods:
    """The periods the privacy notice states, read from the same settings and configuration that enforce them."""

    request_months: int
    leaver_device_days: int
    audit_years: int
    session_hours: int
    sign_in_attempt_hours: int


def published_periods(session: Session) -> PublishedPeriods:
    periods = HousekeepingPeriods.current()
    attempts = periods.sign_in_window + SIGN_IN_ATTEMPT_MARGIN
    return PublishedPeriods(
        request_months=int(get_setting(session, REQUEST_MONTHS.key)),
        leaver_device_days=int(get_setting(session, LEAVER_DEVICE_DAYS.key)),
        audit_years=int(get_setting(session, AUDIT_YEARS.key)),
        session_hours=int(periods.session_lifetime.total_seconds() // 3600),
        sign_in_attempt_hours=int(-(-attempts.total_seconds() // 3600)),
    )


def run_retention(session: Session, now: datetime, periods: HousekeepingPeriods | None = None) -> RetentionReport:
    """Erase what is past its period; idempotent, so the scheduler and cron may both call it."""
    report = RetentionReport()
    if (get_setting(session, CASE_HOLD.key) or "").strip():
        report.held = True
        return report
    report.permission_requests = _erase_requests(
        session,
        sa.and_(
            PermissionRequest.created_at < _months_ago(now, int(get_setting(session, REQUEST_MONTHS.key))),
            PermissionRequest.status.not_in(OPEN_STATUSES),
        ),
    )
    report.bookings = _erase_bookings(session, _months_ago(now, int(get_setting(session, REQUEST_MONTHS.key))))
    _erase_leaver_devices(session, now, report)
    report.audit_events = _cut_audit_events(session, now)
    erased = {key: value for key, value in asdict(report).items() if key in _ERASED}
    if any(erased.values()):
        record_audit_event(session, None, "retention.erased", "retention", "", erased | {"held": False})
    _housekeeping(session, now, periods or HousekeepingPeriods.current(), report)
    return report


_last_scheduled_run: dict[str, datetime] = {}


def scheduled_retention(session: Session, now: datetime) -> RetentionReport | None:
    """The embedded scheduler's job: at most hourly per process (each run is idempotent anyway)."""
    last = _last_scheduled_run.get("at")
    if last is not None and now - last < timedelta(hours=1):
        return None
    _last_scheduled_run["at"] = now
    return run_retention(session, now)
