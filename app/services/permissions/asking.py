"""Asking: a request (the area's rule, standing permissions, one wait per device) and the emergency override."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import format_time, to_local, utcnow
from app.models import (
    Area,
    AreaRule,
    PermissionRequest,
    RequestReason,
    RequestStatus,
    Role,
    StandingPermission,
    User,
)
from app.services.accounts import users_with_role
from app.services.audit import record_audit_event
from app.services.errors import ValidationFailed
from app.services.notices_bulk import new_request_recipient_ids
from app.services.notifications import notify, notify_ids
from app.services.permissions.common import (
    DELEGATE_IDS,
    MAX_EMERGENCY_REASON,
    MAX_OTHER_REASON,
    MIN_EMERGENCY_REASON,
    AreaRuleRefusal,
    Duration,
)
from app.services.permissions.options import DeviceOption, device_options, request_links
from app.services.permissions.places import end_other_places, refuse_second_wait
from app.services.permissions.routing import approvers_on_duty, delegates
from app.services.permissions.times import _end_of_local_day, end_time_for
from app.services.settings import get_setting

# Asking ---------------------------------------------------------------------------------------------


def covering_standing_permission(
    session: Session, requester: User, area: Area, option: DeviceOption, now: datetime
) -> StandingPermission | None:
    """A live standing permission for this person that covers this device and area today."""
    today = to_local(now).date()
    candidates = session.scalars(
        sa.select(StandingPermission)
        .where(
            StandingPermission.person_id == requester.id,
            StandingPermission.ended_at.is_(None),
            StandingPermission.starts_on <= today,
            StandingPermission.ends_on >= today,
        )
        .order_by(StandingPermission.id)
    )
    for standing in candidates:
        if standing.personal_device_id is not None and standing.personal_device_id != option.personal_device_id:
            continue
        if standing.areas and area.id not in {a.id for a in standing.areas}:
            continue
        return standing
    return None


def _validate_emergency_reason(text: str) -> list[str]:
    """What is wrong with an emergency reason, if anything (an empty list when it will do)."""
    if not text:
        return ["Say what is happening in a sentence, for example: pupil having a seizure, calling 999 and parents."]
    if len(text) < MIN_EMERGENCY_REASON:
        return [
            f"Say a little more: use at least {MIN_EMERGENCY_REASON} characters, so the head and the DSL know what is happening."
        ]
    if len(text) > MAX_EMERGENCY_REASON:
        return [f"Use at most {MAX_EMERGENCY_REASON} characters (you used {len(text)})."]
    return []


def _validate_request(
    session: Session,
    requester: User,
    area: Area,
    *,
    device_key: str,
    reason: str,
    reason_other: str,
    duration: str,
    until: str,
    now: datetime,
    emergency: bool = False,
    emergency_reason: str = "",
):
    errors: dict[str, list[str]] = {}
    if emergency and (problems := _validate_emergency_reason(emergency_reason)):
        errors["emergency_reason"] = problems
    option = next((o for o in device_options(session, requester) if o.key == device_key), None)
    if option is None:
        errors["device"] = ["Choose one of your devices. Register a phone in My devices first if it is not listed."]
    if reason not in {r.value for r in RequestReason}:
        errors["reason"] = ["Choose why you need it."]
    elif reason == RequestReason.OTHER.value and not reason_other.strip():
        errors["reason_other"] = ["Say briefly why you need it."]
    if len(reason_other) > MAX_OTHER_REASON:
        errors["reason_other"] = [f"Use at most {MAX_OTHER_REASON} characters."]
    wanted_until = None
    try:
        wanted_until = end_time_for(session, duration, now, until)
    except ValidationFailed as error:
        errors.update(error.field_errors)
    if errors:
        raise ValidationFailed("Some details need correcting.", errors)
    return option, wanted_until


def _refuse_by_rule(session: Session, requester: User, area: Area, option: DeviceOption | None) -> None:
    rule = AreaRule(area.rule)
    if rule == AreaRule.CLOSED:
        message = f"{area.name} is closed to phones and recording devices: none may be taken in, even with permission."
        field = "area"
    elif rule == AreaRule.SCHOOL_DEVICES_ONLY and option is not None and not option.school_device:
        message = (
            f"{area.name} is for school devices only: personal phones and recording devices are never allowed here. "
            "Leave it outside, or borrow a school device from the office."
        )
        field = "device"
    else:
        return
    record_audit_event(
        session,
        requester,
        "permission.refused_by_rule",
        "area",
        area.id,
        {"rule": area.rule, "device": option.key if option else None},
        related={"personal_device": option.personal_device_id, "asset": option.asset_id} if option else None,
    )
    raise AreaRuleRefusal(message, {field: [message]})


def request_permission(
    session: Session,
    requester: User,
    area: Area,
    *,
    device_key: str,
    reason: str,
    reason_other: str = "",
    duration: str,
    until: str = "",
    emergency: bool = False,
    emergency_reason: str = "",
) -> PermissionRequest:
    """Ask to take a device into ``area``; approved at once by a standing permission, else sent to approvers.

    With ``emergency`` (and a reason saying what is happening) it is approved at once as an emergency
    override instead: see ``_override``. The area's rule applies all the same.
    """
    now = utcnow()
    if area.rule == AreaRule.CLOSED.value:
        _refuse_by_rule(session, requester, area, None)
    emergency_reason = (emergency_reason or "").strip() if emergency else ""
    option, wanted_until = _validate_request(
        session,
        requester,
        area,
        device_key=device_key,
        reason=reason,
        reason_other=reason_other,
        duration=duration,
        until=until,
        now=now,
        emergency=emergency,
        emergency_reason=emergency_reason,
    )
    _refuse_by_rule(session, requester, area, option)
    if not emergency:
        refuse_second_wait(session, requester, area, option, now)
    request = PermissionRequest(
        requester_id=requester.id,
        area_id=area.id,
        personal_device_id=option.personal_device_id,
        asset_id=option.asset_id,
        device_label=option.label[:120],
        reason=reason,
        reason_other=reason_other.strip() if reason == RequestReason.OTHER.value else "",
        wanted_until=wanted_until,
        status=RequestStatus.PENDING.value,
        created_at=now,
    )
    session.add(request)
    session.flush()
    details = {
        "area_id": area.id,
        "device": option.key,
        "reason": reason,
        "wanted_until": wanted_until.isoformat(),
    }
    if emergency:
        # Even when a standing permission covers it: an emergency is for the head and the DSL to know about.
        return _override(session, requester, request, emergency_reason, details, now)
    standing = covering_standing_permission(session, requester, area, option, now)
    if standing is not None:
        standing_end = _end_of_local_day(standing.ends_on)
        request.status = RequestStatus.APPROVED.value
        request.standing_permission_id = standing.id
        request.decided_at = now
        request.approved_until = min(wanted_until, standing_end)
        session.flush()
        record_audit_event(
            session,
            requester,
            "permission.auto_approved",
            "permission_request",
            request.id,
            {**details, "standing_permission_id": standing.id, "approved_until": request.approved_until.isoformat()},
            related=request_links(request),
        )
        end_other_places(session, requester, request, now)
        return request
    record_audit_event(
        session, requester, "permission.requested", "permission_request", request.id, details, related=request_links(request)
    )
    delegate_ids = [int(i) for i in get_setting(session, DELEGATE_IDS.key) or []]
    notify_ids(
        session,
        new_request_recipient_ids(session, requester.id, delegate_ids),
        kind="permission.requested",
        title=f"{requester.display_name}: {request.device_label} into {area.name} until {format_time(wanted_until)}",
        body=request.reason_label,
        url=f"/approvals/{request.id}",
        extra={"request_id": request.id, "kind": "permission.requested", "actions": ["approve", "deny"]},
    )
    return request


def school_day_end(session: Session, now: datetime) -> datetime:
    """The latest an emergency override may last: the end of the school day (as "rest of the day")."""
    return end_time_for(session, Duration.REST_OF_DAY.value, now)


def emergency_recipients(session: Session, requester: User) -> list[User]:
    """Every approver on duty and the delegates (the DSL); failing both, every approver. Never the requester."""
    return _first_group(requester, approvers_on_duty(session) + delegates(session), users_with_role(session, Role.APPROVER))


def _first_group(requester: User, *groups: list[User]) -> list[User]:
    """The first group with anyone in it but the requester, each person once."""
    for group in groups:
        recipients = list({user.id: user for user in group if user.id != requester.id}.values())
        if recipients:
            return recipients
    return []


def review_overdue_recipients(session: Session, requester: User) -> list[User]:
    """The admins and the delegates; failing both, every approver. Never the person whose override it was."""
    return _first_group(
        requester, users_with_role(session, Role.ADMIN) + delegates(session), users_with_role(session, Role.APPROVER)
    )


def _override(
    session: Session, requester: User, request: PermissionRequest, emergency_reason: str, details: dict, now: datetime
) -> PermissionRequest:
    """Approve ``request`` at once as an emergency override, to the end of the school day at most, and tell the approvers."""
    day_end = school_day_end(session, now)
    request.emergency = True
    request.emergency_reason = emergency_reason[:MAX_EMERGENCY_REASON]
    request.status = RequestStatus.APPROVED.value
    request.decided_at = now
    request.approved_until = min(request.wanted_until, day_end)
    session.flush()
    recipients = emergency_recipients(session, requester)
    record_audit_event(
        session,
        requester,
        "permission.emergency_override",
        "permission_request",
        request.id,
        {
            **details,
            "approved_until": request.approved_until.isoformat(),
            "capped": request.approved_until < request.wanted_until,
            "emergency_reason": request.emergency_reason[:MAX_EMERGENCY_REASON],
            "notified_user_ids": [u.id for u in recipients],
        },
        related=request_links(request),
    )
    end_other_places(session, requester, request, now)
    device = request.device_label[:40]
    notify(
        session,
        recipients,
        kind="permission.emergency_override",
        title=f"EMERGENCY: {requester.display_name}: {device} in {request.area.name} until {format_time(request.approved_until)}",
        body=request.emergency_reason,
        url=f"/approvals/{request.id}",
        extra={"request_id": request.id, "kind": "permission.emergency_override", "urgency": "high"},
    )
    return request
