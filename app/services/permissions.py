"""Permission to take a device into a pupil area (J2, J3): asking, deciding, cover, expiry and escalation.

Rules kept here, whatever the caller (page, API, scheduler, push action):
- the area's rule first: ``closed`` refuses every device, ``school-devices-only`` refuses personal ones;
- a standing permission that covers the request approves it at once;
- exactly one decision per request: the row is locked (``with_for_update``; SQLite's BEGIN IMMEDIATE)
  and its status checked, and the loser gets ``Conflict`` naming who decided; every path that changes
  a request (inbox, API, a notification's button, review, withdraw, end, the timed jobs) locks its row
  before it appends to the audit log, never after (CONTRIBUTING.md, Transactions);
- nobody decides their own request;
- new requests go to approvers on duty (not away); if every approver is away, to the delegates; a
  request still pending after the escalation minutes is sent to the delegates too;
- an emergency override (a reason is required) is approved at once, capped at the end of the school
  day, without skipping the area's rule; the approvers on duty and the delegates (the DSL) are told at
  once; an approver other than the requester reviews it, once; unreviewed after 24 hours, the admins
  and the delegates are told, once.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from app.clock import format_time, school_zone, to_local, utcnow
from app.models import (
    Area,
    AreaRule,
    DeviceKind,
    DeviceStatus,
    PermissionRequest,
    PersonalDevice,
    RequestReason,
    RequestStatus,
    ReviewOutcome,
    Role,
    StandingPermission,
    User,
)
from app.models.settings import ApproverStatus
from app.services.accounts import users_with_role
from app.services.audit import record_audit_event
from app.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.services.notices_bulk import new_request_recipient_ids
from app.services.notifications import notify, notify_ids
from app.services.personal_data import register_section
from app.services.settings import define_setting, get_setting, set_setting

ESCALATION_MINUTES = define_setting("permissions.escalation_minutes", 5, "Minutes before an undecided request goes to the delegates")
DELEGATE_IDS = define_setting("permissions.delegate_ids", [], "Delegates: approvers who cover when others are away")
# When lessons end, in school time: "end of lesson" is the next of these. A typical primary day.
LESSON_ENDS = define_setting(
    "permissions.lesson_ends", ["09:50", "10:45", "12:00", "14:00", "15:15"], "When lessons end (HH:MM, school time)"
)
# "Rest of the day" runs until here (after-school clubs included).
DAY_ENDS = define_setting("permissions.day_ends", "18:00", "When the school day ends for 'rest of the day' (HH:MM)")

MAX_NOTE = 300
MAX_OTHER_REASON = 200
MAX_EMERGENCY_REASON = 300
MIN_EMERGENCY_REASON = 10  # "a sentence": enough that the head and the DSL know what is happening
REVIEW_WITHIN = timedelta(hours=24)
_HH_MM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class Duration(enum.StrEnum):
    END_OF_LESSON = "end_of_lesson"
    ONE_HOUR = "one_hour"
    REST_OF_DAY = "rest_of_day"
    UNTIL = "until"

    @property
    def label(self) -> str:
        return {
            "end_of_lesson": "Until the end of this lesson",
            "one_hour": "For 1 hour",
            "rest_of_day": "For the rest of the day",
            "until": "Until a time I choose",
        }[self.value]


class AreaRuleRefusal(ValidationFailed):
    """The area's rule refuses this device; the refused attempt is audited and kept."""

    keep_changes = True
    title = "Not allowed in this area"


class AlreadyAsked(ValidationFailed):
    """The same person is already waiting for a decision on the same device in the same area."""

    status = 409
    slug = "already-asked"
    title = "Already asked"

    def __init__(self, first: PermissionRequest) -> None:
        message = (
            f"You already asked to take {first.device_label} into {first.area.name} at {format_time(first.created_at)} "
            "and are waiting for a decision. Follow that request instead of asking again."
        )
        super().__init__(message, {"device": [message]})
        self.request_id = first.id
        self.request_url = f"/requests/{first.id}"
        self.problem_extra = {"request_id": first.id, "request_url": self.request_url}


# Device options: what a person may ask to take in. Other features add their own (school assets on loan).


@dataclass(frozen=True)
class DeviceOption:
    """One choice on the request form. ``key`` is what the form posts: ``personal-12``, ``asset-5``.

    ``label`` names the device (kept on the request); ``hint`` says whose it is on the form.
    """

    key: str
    label: str
    hint: str = ""
    personal_device_id: int | None = None
    asset_id: int | None = None
    school_device: bool = False


DeviceOptionProvider = Callable[[object, User], Iterable[DeviceOption]]
_device_option_providers: list[DeviceOptionProvider] = []


def request_links(request: PermissionRequest) -> dict[str, object]:
    """What a request's audit events are about, for the audit log's person, device, asset and area filters."""
    return {
        "area": request.area_id,
        "user": request.requester_id,
        "personal_device": request.personal_device_id,
        "asset": request.asset_id,
    }


def register_device_option_provider(provider: DeviceOptionProvider) -> DeviceOptionProvider:
    """Let a feature offer more devices on the request form: ``provider(session, user)`` returns options.

    School-device options must set ``asset_id`` and ``school_device=True``; keys must be unique.
    Usable as a decorator.
    """
    if provider not in _device_option_providers:
        _device_option_providers.append(provider)
    return provider


@register_device_option_provider
def personal_device_options(session, user: User) -> list[DeviceOption]:
    """The person's own active devices."""
    # Plain columns: the form needs no IMEIs or owner, and this runs on every request at the door.
    rows = session.execute(
        sa.select(PersonalDevice.id, PersonalDevice.make, PersonalDevice.model, PersonalDevice.kind, PersonalDevice.description)
        .where(PersonalDevice.owner_id == user.id, PersonalDevice.status == DeviceStatus.ACTIVE.value)
        .order_by(PersonalDevice.created_at, PersonalDevice.id)
    )
    return [
        DeviceOption(
            key=f"personal-{row.id}",
            label=f"{row.make} {row.model}".strip(),
            hint=f"your {DeviceKind(row.kind).label.lower()}" + (f", {row.description}" if row.description else ""),
            personal_device_id=row.id,
        )
        for row in rows
    ]


def device_options(session, user: User) -> list[DeviceOption]:
    options: list[DeviceOption] = []
    for provider in _device_option_providers:
        options.extend(provider(session, user))
    return options


# Times ----------------------------------------------------------------------------------------------


def _local_at(day: date, hh_mm: str) -> datetime:
    hours, minutes = (int(part) for part in hh_mm.split(":"))
    return datetime.combine(day, time(hours, minutes), tzinfo=school_zone())


def _end_of_local_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59), tzinfo=school_zone())


def parse_until(text: str, now: datetime, field: str = "until") -> datetime:
    """Read a time as typed (``14:20``, today in school time) or an ISO 8601 date-time with its offset."""
    text = (text or "").strip()
    if not text:
        raise ValidationFailed("Choose a time.", {field: ["Enter a time, like 14:20."]})
    if match := _HH_MM.match(text):
        value = _local_at(to_local(now).date(), f"{match.group(1)}:{match.group(2)}")
    else:
        try:
            value = datetime.fromisoformat(text)
        except ValueError as error:
            raise ValidationFailed("That time is not clear.", {field: ["Enter a time like 14:20."]}) from error
        if value.tzinfo is None:
            value = value.replace(tzinfo=school_zone())
    if value <= now:
        raise ValidationFailed("That time has passed.", {field: ["That time has already passed; choose a later time."]})
    return value


def end_time_for(session, duration: str, now: datetime, until: str = "") -> datetime:
    """When a permission asked for with ``duration`` ends.

    End of lesson is the next lesson end in the school-day timetable (setting ``permissions.lesson_ends``);
    after the last lesson it is one hour. Rest of the day runs to ``permissions.day_ends`` (18:00), or
    to 23:59 when that has passed.
    """
    local_now = to_local(now)
    today = local_now.date()
    if duration == Duration.ONE_HOUR.value:
        return now + timedelta(hours=1)
    if duration == Duration.END_OF_LESSON.value:
        for hh_mm in sorted(get_setting(session, LESSON_ENDS.key)):
            boundary = _local_at(today, hh_mm)
            if boundary > local_now:
                return boundary
        return now + timedelta(hours=1)
    if duration == Duration.REST_OF_DAY.value:
        day_end = _local_at(today, get_setting(session, DAY_ENDS.key))
        return day_end if day_end > local_now else _end_of_local_day(today)
    if duration == Duration.UNTIL.value:
        value = parse_until(until, now)
        if to_local(value).date() != today:
            raise ValidationFailed("Permission lasts a day at most.", {"until": ["Choose a time later today."]})
        return value
    raise ValidationFailed("Choose how long.", {"duration": ["Choose how long you need it."]})


# Routing: who hears about a request --------------------------------------------------------------


def is_away(session, user: User) -> bool:
    status = session.get(ApproverStatus, user.id)
    return bool(status and status.away)


def approvers_on_duty(session) -> list[User]:
    away_ids = set(session.scalars(sa.select(ApproverStatus.user_id).where(ApproverStatus.away.is_(True))))
    return [user for user in users_with_role(session, Role.APPROVER) if user.id not in away_ids]


def delegates(session) -> list[User]:
    """The delegates named in the settings who are still active approvers."""
    ids = [int(i) for i in get_setting(session, DELEGATE_IDS.key) or []]
    if not ids:
        return []
    people = session.scalars(sa.select(User).where(User.id.in_(ids), User.is_active_account.is_(True)))
    return sorted((u for u in people if u.has_role(Role.APPROVER)), key=lambda u: u.display_name)


def new_request_recipients(session, requester: User) -> list[User]:
    """Approvers on duty; if all are away, the delegates; failing both, every approver (someone must hear)."""
    for group in (approvers_on_duty, delegates, lambda s: users_with_role(s, Role.APPROVER)):
        recipients = [user for user in group(session) if user.id != requester.id]
        if recipients:
            return recipients
    return []


def escalation_recipients(session, requester: User) -> list[User]:
    """The delegates; with none named, every approver, away or not."""
    for group in (delegates, lambda s: users_with_role(s, Role.APPROVER)):
        recipients = [user for user in group(session) if user.id != requester.id]
        if recipients:
            return recipients
    return []


def set_away(session, actor: User, away: bool) -> None:
    """An approver marks themselves away (requests go to others) or back on duty."""
    if not actor.has_role(Role.APPROVER):
        raise Forbidden("Only approvers have an away setting.")
    status = session.get(ApproverStatus, actor.id)
    if status is None:
        status = ApproverStatus(user_id=actor.id, away=False)
        session.add(status)
    if status.away == away:
        return
    status.away = away
    status.changed_at = utcnow()
    session.flush()
    record_audit_event(session, actor, "approver.away" if away else "approver.back", "user", actor.id)


def set_delegates(session, actor: User, user_ids: Iterable[int]) -> list[User]:
    """Name the delegates (approvers, e.g. the deputy head and the DSL). Approvers and admins may."""
    if not actor.has_role(Role.APPROVER, Role.ADMIN):
        raise Forbidden("Only approvers and admins choose the delegates.")
    ids = sorted({int(i) for i in user_ids})
    people = list(session.scalars(sa.select(User).where(User.id.in_(ids)))) if ids else []
    if len(people) != len(ids) or any(not u.is_active_account or not u.has_role(Role.APPROVER) for u in people):
        raise ValidationFailed(
            "Delegates must be approvers.", {"delegates": ["Choose delegates from the active approvers; give someone the approver role first."]}
        )
    set_setting(session, actor, DELEGATE_IDS.key, ids)
    return people


def escalation_minutes(session) -> int:
    return int(get_setting(session, ESCALATION_MINUTES.key))


def set_escalation_minutes(session, actor: User, minutes: int) -> None:
    if not actor.has_role(Role.APPROVER, Role.ADMIN):
        raise Forbidden("Only approvers and admins change the escalation time.")
    if not 1 <= minutes <= 120:
        raise ValidationFailed("Choose between 1 and 120 minutes.", {"escalation_minutes": ["Choose between 1 and 120 minutes."]})
    set_setting(session, actor, ESCALATION_MINUTES.key, minutes)


# Asking ---------------------------------------------------------------------------------------------


def covering_standing_permission(session, requester: User, area: Area, option: DeviceOption, now: datetime) -> StandingPermission | None:
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
        return [f"Say a little more: use at least {MIN_EMERGENCY_REASON} characters, so the head and the DSL know what is happening."]
    if len(text) > MAX_EMERGENCY_REASON:
        return [f"Use at most {MAX_EMERGENCY_REASON} characters (you used {len(text)})."]
    return []


def _validate_request(
    session,
    requester: User,
    area: Area,
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


def _refuse_by_rule(session, requester: User, area: Area, option: DeviceOption | None) -> None:
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
    session,
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
        session, requester, area, device_key, reason, reason_other, duration, until, now, emergency, emergency_reason
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
    record_audit_event(session, requester, "permission.requested", "permission_request", request.id, details, related=request_links(request))
    recipient_ids = new_request_recipient_ids(session, requester.id, [int(i) for i in get_setting(session, DELEGATE_IDS.key) or []])
    notify_ids(
        session,
        recipient_ids,
        kind="permission.requested",
        title=f"{requester.display_name}: {request.device_label} into {area.name} until {format_time(wanted_until)}",
        body=request.reason_label,
        url=f"/approvals/{request.id}",
        extra={"request_id": request.id, "kind": "permission.requested", "actions": ["approve", "deny"]},
    )
    return request


def school_day_end(session, now: datetime) -> datetime:
    """The latest an emergency override may last: the end of the school day (as "rest of the day")."""
    return end_time_for(session, Duration.REST_OF_DAY.value, now)


def emergency_recipients(session, requester: User) -> list[User]:
    """Every approver on duty and the delegates (the DSL); failing both, every approver. Never the requester."""
    return _first_group(requester, approvers_on_duty(session) + delegates(session), users_with_role(session, Role.APPROVER))


def _first_group(requester: User, *groups: list[User]) -> list[User]:
    """The first group with anyone in it but the requester, each person once."""
    for group in groups:
        recipients = list({user.id: user for user in group if user.id != requester.id}.values())
        if recipients:
            return recipients
    return []


def review_overdue_recipients(session, requester: User) -> list[User]:
    """The admins and the delegates; failing both, every approver. Never the person whose override it was."""
    return _first_group(requester, users_with_role(session, Role.ADMIN) + delegates(session), users_with_role(session, Role.APPROVER))


def _override(session, requester: User, request: PermissionRequest, emergency_reason: str, details: dict, now: datetime) -> PermissionRequest:
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


# One tap, one request; one device, one place ------------------------------------------------------

# PostgreSQL advisory lock spaces (two-key form: apart from the one-key locks used elsewhere).
_PERSONAL_DEVICE_LOCK = 7101
_ASSET_LOCK = 7102


def _lock_device(session, personal_device_id: int | None, asset_id: int | None) -> None:
    """Serialise asking for and approving one device (PostgreSQL; SQLite's BEGIN IMMEDIATE already does).

    Taken after the request's own row lock and before the audit append, like every lock here.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    space, device_id = (_PERSONAL_DEVICE_LOCK, personal_device_id) if personal_device_id is not None else (_ASSET_LOCK, asset_id)
    session.execute(sa.text("SELECT pg_advisory_xact_lock(:space, :device)"), {"space": space, "device": device_id})


def _same_device(personal_device_id: int | None, asset_id: int | None):
    if personal_device_id is not None:
        return PermissionRequest.personal_device_id == personal_device_id
    return PermissionRequest.asset_id == asset_id


def refuse_second_wait(session, requester: User, area: Area, option: DeviceOption, now: datetime) -> None:
    """Refuse a second request while the same person waits for a decision on the same device and area."""
    _lock_device(session, option.personal_device_id, option.asset_id)
    first = session.scalar(
        sa.select(PermissionRequest)
        .where(
            PermissionRequest.requester_id == requester.id,
            PermissionRequest.area_id == area.id,
            _same_device(option.personal_device_id, option.asset_id),
            PermissionRequest.status == RequestStatus.PENDING.value,
            PermissionRequest.wanted_until > now,
        )
        .order_by(PermissionRequest.id)
        .limit(1)
    )
    if first is not None:
        raise AlreadyAsked(first)


def end_other_places(session, actor: User | None, approved: PermissionRequest, now: datetime) -> list[PermissionRequest]:
    """One device, one place: end the same device's other live approvals now that ``approved`` is approved.

    Each is ended (audited ``permission.ended``, its requester told), so the Now board shows the device in
    one area only.
    """
    _lock_device(session, approved.personal_device_id, approved.asset_id)
    ids = list(
        session.scalars(
            sa.select(PermissionRequest.id)
            .where(
                _same_device(approved.personal_device_id, approved.asset_id),
                PermissionRequest.id != approved.id,
                PermissionRequest.status == RequestStatus.APPROVED.value,
                PermissionRequest.approved_until > now,
            )
            .order_by(PermissionRequest.id)
            .with_for_update()
        )
    )
    ended = []
    for request_id in ids:
        other = session.get(PermissionRequest, request_id, populate_existing=True)
        other.status = RequestStatus.ENDED.value
        other.ended_at = now
        other.superseded_by_id = approved.id
        session.flush()
        moved = other.area_id != approved.area_id
        record_audit_event(
            session,
            actor,
            "permission.ended",
            "permission_request",
            other.id,
            {
                "area_id": other.area_id,
                "reason": "approved for another area" if moved else "approved again",
                "moved_to_area_id": approved.area_id,
                "replaced_by_request_id": approved.id,
            },
            related=request_links(other),
        )
        notify(
            session,
            [other.requester],
            kind="permission.ended",
            title=f"Ended: {other.device_label} in {other.area.name}",
            body=(
                f"It is now approved for {approved.area.name} until {format_time(approved.approved_until)}: a device is in one place at a time."
                if moved
                else f"A new permission replaces it, until {format_time(approved.approved_until)}."
            ),
            url=f"/requests/{other.id}",
            extra={"request_id": other.id, "kind": "permission.ended"},
        )
        ended.append(other)
    return ended


def moved_from(session, active: list[PermissionRequest]) -> dict[int, PermissionRequest]:
    """For the Now board: the approval each of ``active`` replaced elsewhere, keyed by the active request's id."""
    if not active:
        return {}
    replaced = session.scalars(
        sa.select(PermissionRequest)
        .where(PermissionRequest.superseded_by_id.in_([r.id for r in active]))
        .order_by(PermissionRequest.id)
    ).unique()
    return {r.superseded_by_id: r for r in replaced}


# Deciding -------------------------------------------------------------------------------------------


def lock_request(session, request_id: int) -> bool:
    """Lock a request's bare row for this transaction; False when there is no such request.

    Take it before anything else the transaction locks, the audit append above all (the lock order in
    CONTRIBUTING.md, Transactions). SQLite's BEGIN IMMEDIATE already holds the only write lock.
    """
    return session.scalar(sa.select(PermissionRequest.id).where(PermissionRequest.id == request_id).with_for_update()) is not None


def _locked(session, request_id: int) -> PermissionRequest:
    """The request, locked for this transaction and then re-read (PostgreSQL row lock; SQLite holds BEGIN IMMEDIATE).

    The lock is taken on the bare row first: PostgreSQL re-checks a locked row that changed while it
    waited, but not the rows joined to it, so a joined load in the same statement could see the new
    ``decided_by_id`` with the old (empty) ``decided_by``. The fresh read after the lock sees both.
    """
    if not lock_request(session, request_id):
        raise NotFound("There is no such request.")
    return session.get(PermissionRequest, request_id, populate_existing=True)


def already_settled(request: PermissionRequest) -> str:
    """Why a request can no longer be decided, naming who decided it."""
    when = format_time(request.decided_at)
    status = request.status
    if status == RequestStatus.APPROVED.value and request.emergency:
        return f"{request.requester.display_name} used an emergency override at {when}: it needs a review, not a decision."
    if status == RequestStatus.APPROVED.value and request.standing_permission_id:
        return "This request was approved at once by a standing permission."
    if status == RequestStatus.APPROVED.value:
        return f"{request.decided_by.display_name} already approved this at {when}."
    if status == RequestStatus.DENIED.value:
        return f"{request.decided_by.display_name} already denied this at {when}."
    if status == RequestStatus.WITHDRAWN.value:
        return f"{request.requester.display_name} withdrew this request."
    if status == RequestStatus.EXPIRED.value:
        return "This request has expired."
    if status == RequestStatus.ENDED.value:
        return "This permission has already ended."
    return "This request has already been decided."


def decide(
    session,
    actor: User,
    request_id: int,
    decision: str,
    *,
    note: str = "",
    until: datetime | None = None,
) -> PermissionRequest:
    """Approve or deny a pending request, once. ``until`` (approve only) may shorten the permission.

    Raises Forbidden for non-approvers and for the requester, Conflict (naming who decided) when the
    request is no longer pending, ValidationFailed for a bad decision, note or time.
    """
    if not actor.has_role(Role.APPROVER) or not actor.is_active_account:
        raise Forbidden("Only approvers decide requests.")
    if decision not in ("approve", "deny"):
        raise ValidationFailed("Choose approve or deny.", {"decision": ["Must be approve or deny."]})
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise ValidationFailed("The note is too long.", {"note": [f"Use at most {MAX_NOTE} characters."]})
    request = _locked(session, request_id)
    if request.requester_id == actor.id:
        raise Forbidden("You cannot decide your own request; another approver will.")
    if request.status != RequestStatus.PENDING.value:
        raise Conflict(already_settled(request))
    now = utcnow()
    if request.wanted_until <= now:
        raise Conflict(f"This request ran out at {format_time(request.wanted_until)} before anyone decided.")
    if until is not None and decision == "approve":
        if until <= now:
            raise ValidationFailed("That time has passed.", {"until": ["That time has already passed; choose a later time."]})
        if until > request.wanted_until:
            raise ValidationFailed(
                "You can only shorten it.",
                {"until": [f"They asked until {format_time(request.wanted_until)}; choose that or earlier."]},
            )
    request.decided_by_id = actor.id
    request.decided_at = now
    request.decision_note = note
    details: dict = {"area_id": request.area_id, "note_given": bool(note)}
    if decision == "approve":
        request.status = RequestStatus.APPROVED.value
        request.approved_until = until or request.wanted_until
        details["approved_until"] = request.approved_until.isoformat()
        details["shortened"] = request.approved_until < request.wanted_until
        title = f"Approved: {request.device_label} in {request.area.name} until {format_time(request.approved_until)}"
        body = f"By {actor.display_name}." + (f" Note: {note}" if note else "")
    else:
        request.status = RequestStatus.DENIED.value
        title = f"Denied: {request.device_label} in {request.area.name}"
        body = f"By {actor.display_name}." + (f" Note: {note}" if note else "")
    session.flush()
    session.expire(request, ["decided_by"])
    record_audit_event(session, actor, f"permission.{request.status}", "permission_request", request.id, details, related=request_links(request))
    if request.status == RequestStatus.APPROVED.value:
        end_other_places(session, actor, request, now)
    notify(
        session,
        [request.requester],
        kind=f"permission.{request.status}",
        title=title,
        body=body,
        url=f"/requests/{request.id}",
        extra={"request_id": request.id, "kind": f"permission.{request.status}"},
    )
    return request


def already_reviewed(request: PermissionRequest) -> str:
    """Who reviewed an emergency override, when, and what they found."""
    return (
        f"{request.reviewed_by.display_name} already reviewed this at {format_time(request.reviewed_at)}: "
        f"{ReviewOutcome(request.review_outcome).label}."
    )


def review_emergency(session, actor: User, request_id: int, outcome: str, *, note: str = "") -> PermissionRequest:
    """Record an approver's review of an emergency override: justified or not (with a note), exactly once.

    Raises Forbidden for non-approvers and for the requester, Conflict (naming who reviewed) when it is
    already reviewed or was no emergency, ValidationFailed for a bad outcome or note.
    """
    if not actor.has_role(Role.APPROVER) or not actor.is_active_account:
        raise Forbidden("Only approvers review emergency overrides.")
    errors: dict[str, list[str]] = {}
    if outcome not in {o.value for o in ReviewOutcome}:
        errors["outcome"] = ["Choose justified or not justified."]
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        errors["note"] = [f"Use at most {MAX_NOTE} characters."]
    elif outcome == ReviewOutcome.NOT_JUSTIFIED.value and not note:
        errors["note"] = ["Say why it was not justified, and what happens next."]
    if errors:
        raise ValidationFailed("Some details need correcting.", errors)
    request = _locked(session, request_id)
    if not request.emergency:
        raise Conflict("This was not an emergency override: there is nothing to review.")
    if request.requester_id == actor.id:
        raise Forbidden("You cannot review your own emergency override; another approver will.")
    if request.reviewed_at is not None:
        raise Conflict(already_reviewed(request))
    now = utcnow()
    request.reviewed_by_id = actor.id
    request.reviewed_at = now
    request.review_outcome = outcome
    request.review_note = note
    session.flush()
    session.expire(request, ["reviewed_by"])
    record_audit_event(
        session,
        actor,
        "permission.emergency_reviewed",
        "permission_request",
        request.id,
        {
            "area_id": request.area_id,
            "outcome": outcome,
            "note": note[:MAX_NOTE],
            "hours_after": round((now - request.created_at).total_seconds() / 3600, 1),
            "late": now - request.created_at > REVIEW_WITHIN,
        },
        related=request_links(request),
    )
    notify(
        session,
        [request.requester],
        kind="permission.emergency_reviewed",
        title=f"Your emergency override in {request.area.name} was reviewed: {ReviewOutcome(outcome).label}",
        body=f"By {actor.display_name}." + (f" Note: {note}" if note else ""),
        url=f"/requests/{request.id}",
        extra={"request_id": request.id, "kind": "permission.emergency_reviewed"},
    )
    return request


def withdraw(session, actor: User, request_id: int) -> PermissionRequest:
    """The requester takes back a request nobody has decided yet."""
    own_request(session, actor, request_id)
    request = _locked(session, request_id)
    if request.status != RequestStatus.PENDING.value:
        raise Conflict(already_settled(request))
    request.status = RequestStatus.WITHDRAWN.value
    request.ended_at = utcnow()
    session.flush()
    record_audit_event(session, actor, "permission.withdrawn", "permission_request", request.id, {"area_id": request.area_id}, related=request_links(request))
    return request


def end_permission(session, actor: User, request_id: int) -> PermissionRequest:
    """"I've left the room": the requester ends an approved permission early."""
    own_request(session, actor, request_id)
    request = _locked(session, request_id)
    if request.status == RequestStatus.PENDING.value:
        raise Conflict("This has not been approved yet; withdraw it instead.")
    if request.status != RequestStatus.APPROVED.value:
        raise Conflict(already_settled(request))
    request.status = RequestStatus.ENDED.value
    request.ended_at = utcnow()
    session.flush()
    record_audit_event(
        session, actor, "permission.ended", "permission_request", request.id, {"area_id": request.area_id, "early": True},
        related=request_links(request),
    )
    return request


# Timed jobs: idempotent, driven by an explicit ``now`` ------------------------------------------------


@dataclass(frozen=True)
class JobReport:
    expired: int
    escalated: int
    reviews_overdue: int = 0


def _lock_and_load(session, condition) -> list[PermissionRequest]:
    """Lock the rows matching ``condition`` (skipping rows another transaction holds), then read them fresh."""
    ids = list(
        session.scalars(
            sa.select(PermissionRequest.id).where(condition).order_by(PermissionRequest.id).with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return []
    return list(
        session.scalars(
            sa.select(PermissionRequest)
            .where(PermissionRequest.id.in_(ids))
            .order_by(PermissionRequest.id)
            .execution_options(populate_existing=True)
        ).unique()
    )


def expire_due(session, now: datetime) -> int:
    """End approved permissions whose time is up, and pending requests nobody decided in time."""
    due = _lock_and_load(
        session,
        sa.or_(
            sa.and_(PermissionRequest.status == RequestStatus.APPROVED.value, PermissionRequest.approved_until <= now),
            sa.and_(PermissionRequest.status == RequestStatus.PENDING.value, PermissionRequest.wanted_until <= now),
        ),
    )
    for request in due:
        was = request.status
        request.status = RequestStatus.EXPIRED.value
        request.ended_at = request.approved_until if was == RequestStatus.APPROVED.value else request.wanted_until
        session.flush()
        record_audit_event(
            session, None, "permission.expired", "permission_request", request.id, {"was": was, "area_id": request.area_id},
            related=request_links(request),
        )
        if was == RequestStatus.APPROVED.value:
            title = f"Time's up: {request.device_label} in {request.area.name} ended at {format_time(request.ended_at)}"
        else:
            title = f"No decision in time: your request for {request.area.name} has expired"
        notify(
            session,
            [request.requester],
            kind="permission.expired",
            title=title,
            url=f"/requests/{request.id}",
            extra={"request_id": request.id, "kind": "permission.expired"},
        )
    return len(due)


def escalate_due(session, now: datetime) -> int:
    """Send requests still pending after the escalation minutes to the delegates (once each)."""
    cutoff = now - timedelta(minutes=escalation_minutes(session))
    due = _lock_and_load(
        session,
        sa.and_(
            PermissionRequest.status == RequestStatus.PENDING.value,
            PermissionRequest.escalated_at.is_(None),
            PermissionRequest.created_at <= cutoff,
            PermissionRequest.wanted_until > now,
        ),
    )
    for request in due:
        request.escalated_at = now
        recipients = escalation_recipients(session, request.requester)
        session.flush()
        record_audit_event(
            session,
            None,
            "permission.escalated",
            "permission_request",
            request.id,
            {"notified_user_ids": [u.id for u in recipients], "waited_minutes": int((now - request.created_at).total_seconds() // 60)},
            related=request_links(request),
        )
        notify(
            session,
            recipients,
            kind="permission.escalated",
            title=f"Still waiting: {request.requester.display_name}: {request.device_label} into {request.area.name}",
            body=f"Asked at {format_time(request.created_at)}; nobody has decided. {request.reason_label}",
            url=f"/approvals/{request.id}",
            extra={"request_id": request.id, "kind": "permission.escalated", "actions": ["approve", "deny"]},
        )
    return len(due)


def escalate_unreviewed(session, now: datetime) -> int:
    """Tell the admins and the delegates about emergency overrides nobody reviewed within 24 hours (once each)."""
    due = _lock_and_load(
        session,
        sa.and_(
            PermissionRequest.emergency.is_(True),
            PermissionRequest.reviewed_at.is_(None),
            PermissionRequest.review_escalated_at.is_(None),
            PermissionRequest.created_at <= now - REVIEW_WITHIN,
        ),
    )
    for request in due:
        request.review_escalated_at = now
        recipients = review_overdue_recipients(session, request.requester)
        session.flush()
        record_audit_event(
            session,
            None,
            "permission.emergency_review_overdue",
            "permission_request",
            request.id,
            {
                "area_id": request.area_id,
                "notified_user_ids": [u.id for u in recipients],
                "hours_waiting": int((now - request.created_at).total_seconds() // 3600),
            },
            related=request_links(request),
        )
        notify(
            session,
            recipients,
            kind="permission.emergency_review_overdue",
            title=f"Not reviewed in 24 hours: {request.requester.display_name}'s emergency override in {request.area.name}",
            body=f"Used at {format_time(request.created_at)} on {to_local(request.created_at):%d/%m/%Y}: {request.emergency_reason}",
            url=f"/approvals/{request.id}",
            extra={"request_id": request.id, "kind": "permission.emergency_review_overdue"},
        )
    return len(due)


def run_jobs(session, now: datetime) -> JobReport:
    """Expire, escalate, then chase unreviewed emergency overrides. Safe to run any number of times, anywhere."""
    expired = expire_due(session, now)
    escalated = escalate_due(session, now)
    overdue = escalate_unreviewed(session, now)
    return JobReport(expired=expired, escalated=escalated, reviews_overdue=overdue)


# Standing permissions -------------------------------------------------------------------------------


def grant_standing_permission(
    session,
    actor: User,
    *,
    person_id: int,
    personal_device_id: int | None = None,
    area_ids: Iterable[int] = (),
    starts_on: date | None,
    ends_on: date | None,
    reason: str,
) -> StandingPermission:
    """An approver allows a person (optionally one device, some areas) ahead, for a date range."""
    if not actor.has_role(Role.APPROVER):
        raise Forbidden("Only approvers grant standing permissions.")
    errors: dict[str, list[str]] = {}
    person = session.get(User, person_id) if person_id else None
    if person is None or not person.is_active_account:
        errors["person"] = ["Choose a member of staff."]
    elif person.id == actor.id:
        errors["person"] = ["You cannot grant yourself a standing permission; ask another approver."]
    device = None
    if personal_device_id:
        device = session.get(PersonalDevice, personal_device_id)
        if device is None or person is None or device.owner_id != person.id or device.status != DeviceStatus.ACTIVE.value:
            errors["device"] = ["Choose one of their active devices, or any device."]
    areas = list(session.scalars(sa.select(Area).where(Area.id.in_(list(area_ids))))) if area_ids else []
    if len(areas) != len(set(area_ids)):
        errors["areas"] = ["Choose areas from the list."]
    for area in areas:
        if area.rule == AreaRule.CLOSED.value:
            errors.setdefault("areas", []).append(f"{area.name} is closed to devices.")
        elif area.rule == AreaRule.SCHOOL_DEVICES_ONLY.value and device is not None:
            errors.setdefault("areas", []).append(f"{area.name} is for school devices only.")
    today = to_local(utcnow()).date()
    if starts_on is None:
        errors["starts_on"] = ["Enter the first day."]
    if ends_on is None:
        errors["ends_on"] = ["Enter the last day."]
    if starts_on and ends_on:
        if ends_on < starts_on:
            errors["ends_on"] = ["The last day must be on or after the first day."]
        elif ends_on < today:
            errors["ends_on"] = ["The last day has already passed."]
        elif (ends_on - starts_on).days > 366:
            errors["ends_on"] = ["A standing permission lasts a year at most."]
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = ["Say why, for example a medical need."]
    elif len(reason) > 200:
        errors["reason"] = ["Use at most 200 characters."]
    if errors:
        raise ValidationFailed("Some details need correcting.", errors)
    standing = StandingPermission(
        person_id=person.id,
        personal_device_id=device.id if device else None,
        starts_on=starts_on,
        ends_on=ends_on,
        reason=reason,
        granted_by_id=actor.id,
        areas=areas,
    )
    session.add(standing)
    session.flush()
    record_audit_event(
        session,
        actor,
        "standing_permission.granted",
        "standing_permission",
        standing.id,
        {
            "person_id": person.id,
            "personal_device_id": standing.personal_device_id,
            "area_ids": sorted(a.id for a in areas),
            "starts_on": starts_on.isoformat(),
            "ends_on": ends_on.isoformat(),
        },
        related={"user": person.id, "personal_device": standing.personal_device_id, "area": areas[0].id if len(areas) == 1 else None},
    )
    notify(
        session,
        [person],
        kind="standing_permission.granted",
        title=f"Standing permission from {actor.display_name}",
        body=f"{starts_on:%d/%m/%Y} to {ends_on:%d/%m/%Y}: {reason}",
        url="/requests",
        extra={"standing_permission_id": standing.id, "kind": "standing_permission.granted"},
    )
    return standing


def end_standing_permission(session, actor: User, standing_id: int) -> StandingPermission:
    """End a standing permission early; requests it already approved keep their end time."""
    if not actor.has_role(Role.APPROVER):
        raise Forbidden("Only approvers end standing permissions.")
    standing = session.scalars(
        sa.select(StandingPermission)
        .where(StandingPermission.id == standing_id)
        .with_for_update(of=StandingPermission)
        .execution_options(populate_existing=True)
    ).unique().one_or_none()
    if standing is None:
        raise NotFound("There is no such standing permission.")
    if standing.ended_at is not None:
        raise Conflict("This standing permission has already ended.")
    standing.ended_at = utcnow()
    standing.ended_by_id = actor.id
    session.flush()
    record_audit_event(
        session,
        actor,
        "standing_permission.ended",
        "standing_permission",
        standing.id,
        {"person_id": standing.person_id},
        related={"user": standing.person_id, "personal_device": standing.personal_device_id},
    )
    return standing


def standing_permissions(session, *, include_ended: bool = False) -> list[StandingPermission]:
    query = sa.select(StandingPermission)
    if not include_ended:
        today = to_local(utcnow()).date()
        query = query.where(StandingPermission.ended_at.is_(None), StandingPermission.ends_on >= today)
    return list(session.scalars(query.order_by(StandingPermission.ends_on, StandingPermission.id)).unique())


def standing_permissions_of(session, person: User) -> list[StandingPermission]:
    return list(
        session.scalars(
            sa.select(StandingPermission).where(StandingPermission.person_id == person.id).order_by(StandingPermission.id.desc())
        ).unique()
    )


# Reading ----------------------------------------------------------------------------------------------


def requests_of(session, user: User, limit: int = 50) -> list[PermissionRequest]:
    return list(
        session.scalars(
            sa.select(PermissionRequest)
            .where(PermissionRequest.requester_id == user.id)
            .order_by(PermissionRequest.created_at.desc(), PermissionRequest.id.desc())
            .limit(limit)
        ).unique()
    )


def own_request(session, user: User, request_id: int) -> PermissionRequest:
    """The person's own request, or NotFound: someone else's is indistinguishable from none."""
    request = session.get(PermissionRequest, request_id)
    if request is None or request.requester_id != user.id:
        raise NotFound("There is no such request of yours.")
    return request


def visible_request(session, user: User, request_id: int) -> PermissionRequest:
    """Requesters see their own; approvers see all."""
    request = session.get(PermissionRequest, request_id)
    if request is None or (request.requester_id != user.id and not user.has_role(Role.APPROVER)):
        raise NotFound("There is no such request.")
    return request


def pending_requests(session) -> list[PermissionRequest]:
    """The approvals inbox: oldest first."""
    return list(
        session.scalars(
            sa.select(PermissionRequest)
            .where(PermissionRequest.status == RequestStatus.PENDING.value)
            .order_by(PermissionRequest.created_at, PermissionRequest.id)
        ).unique()
    )


def emergencies_to_review(session) -> list[PermissionRequest]:
    """Emergency overrides nobody has reviewed yet: oldest first."""
    return list(
        session.scalars(
            sa.select(PermissionRequest)
            .where(PermissionRequest.emergency.is_(True), PermissionRequest.reviewed_at.is_(None))
            .order_by(PermissionRequest.created_at, PermissionRequest.id)
        ).unique()
    )


def active_permissions(session, now: datetime) -> list[PermissionRequest]:
    """The Now board: approved and not yet over, soonest to end first."""
    return list(
        session.scalars(
            sa.select(PermissionRequest)
            .where(PermissionRequest.status == RequestStatus.APPROVED.value, PermissionRequest.approved_until > now)
            .order_by(PermissionRequest.approved_until, PermissionRequest.id)
        ).unique()
    )


def describe_status(request: PermissionRequest) -> str:
    """The sentence the requester's live page shows, in school time."""
    status = request.status
    if status == RequestStatus.PENDING.value:
        return "Waiting for a decision. The approvers on duty have been told."
    if status == RequestStatus.APPROVED.value:
        if request.emergency:
            return f"Emergency override: approved until {format_time(request.approved_until)}, {request.review_label}."
        if request.standing_permission_id:
            return f"Approved until {format_time(request.approved_until)} by your standing permission."
        return f"Approved until {format_time(request.approved_until)} by {request.decided_by.display_name}"
    if status == RequestStatus.DENIED.value:
        return f"Denied by {request.decided_by.display_name}"
    if status == RequestStatus.WITHDRAWN.value:
        return "You withdrew this request."
    if status == RequestStatus.EXPIRED.value:
        if request.approved_until is not None:
            return f"Expired at {format_time(request.ended_at)}."
        return f"Nobody decided before {format_time(request.wanted_until)}, so this request has expired."
    if request.superseded_by_id is not None:
        return f"Ended at {format_time(request.ended_at)}: the same device was approved elsewhere (one place at a time)."
    return f"Ended at {format_time(request.ended_at)}: you left the room."


@register_section
def personal_data_section(session, user: User) -> tuple[str, object]:
    """The person's permission requests and standing permissions, for "My data"."""

    def at(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return "permissions", {
        "requests": [
            {
                "id": r.id,
                "area": r.area.name,
                "device": r.device_label,
                "reason": r.reason,
                "reason_other": r.reason_other,
                "status": r.status,
                "wanted_until": at(r.wanted_until),
                "approved_until": at(r.approved_until),
                "decided_by": r.decided_by.display_name if r.decided_by else None,
                "decided_at": at(r.decided_at),
                "decision_note": r.decision_note,
                "ended_at": at(r.ended_at),
                "created_at": at(r.created_at),
                "emergency": r.emergency,
                "emergency_reason": r.emergency_reason,
                "review": (
                    {"outcome": r.review_outcome, "note": r.review_note, "by": r.reviewed_by.display_name, "at": at(r.reviewed_at)}
                    if r.reviewed_at
                    else None
                ),
            }
            for r in requests_of(session, user, limit=100_000)
        ],
        "standing_permissions": [
            {
                "id": s.id,
                "device": s.personal_device.name if s.personal_device else None,
                "areas": [a.name for a in s.areas],
                "starts_on": s.starts_on.isoformat(),
                "ends_on": s.ends_on.isoformat(),
                "reason": s.reason,
                "granted_by": s.granted_by.display_name,
                "ended_at": at(s.ended_at),
            }
            for s in standing_permissions_of(session, user)
        ],
    }
