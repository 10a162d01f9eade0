"""Standing permissions: granted ahead for a device and areas over a range of dates."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import to_local, utcnow
from app.models import (
    Area,
    AreaRule,
    DeviceStatus,
    PersonalDevice,
    Role,
    StandingPermission,
    User,
)
from app.services.audit import record_audit_event
from app.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.services.notifications import notify

# Standing permissions -------------------------------------------------------------------------------


Errors = dict[str, list[str]]


def _grantee(session: Session, actor: User, person_id: int, errors: Errors) -> User | None:
    person = session.get(User, person_id) if person_id else None
    if person is None or not person.is_active_account:
        errors["person"] = ["Choose a member of staff."]
    elif person.id == actor.id:
        errors["person"] = ["You cannot grant yourself a standing permission; ask another approver."]
    return person


def _granted_device(
    session: Session, person: User | None, personal_device_id: int | None, errors: Errors
) -> PersonalDevice | None:
    if not personal_device_id:
        return None
    device = session.get(PersonalDevice, personal_device_id)
    if device is None or person is None or device.owner_id != person.id or device.status != DeviceStatus.ACTIVE.value:
        errors["device"] = ["Choose one of their active devices, or any device."]
    return device


def _granted_areas(session: Session, area_ids: Iterable[int], device: PersonalDevice | None, errors: Errors) -> list[Area]:
    wanted = list(area_ids)
    areas = list(session.scalars(sa.select(Area).where(Area.id.in_(wanted)))) if wanted else []
    if len(areas) != len(set(wanted)):
        errors["areas"] = ["Choose areas from the list."]
    for area in areas:
        if area.rule == AreaRule.CLOSED.value:
            errors.setdefault("areas", []).append(f"{area.name} is closed to devices.")
        elif area.rule == AreaRule.SCHOOL_DEVICES_ONLY.value and device is not None:
            errors.setdefault("areas", []).append(f"{area.name} is for school devices only.")
    return areas


def _check_dates(starts_on: date | None, ends_on: date | None, errors: Errors) -> None:
    if starts_on is None:
        errors["starts_on"] = ["Enter the first day."]
    if ends_on is None:
        errors["ends_on"] = ["Enter the last day."]
    if not (starts_on and ends_on):
        return
    if ends_on < starts_on:
        errors["ends_on"] = ["The last day must be on or after the first day."]
    elif ends_on < to_local(utcnow()).date():
        errors["ends_on"] = ["The last day has already passed."]
    elif (ends_on - starts_on).days > 366:
        errors["ends_on"] = ["A standing permission lasts a year at most."]


def _checked_reason(reason: str, errors: Errors) -> str:
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = ["Say why, for example a medical need."]
    elif len(reason) > 200:
        errors["reason"] = ["Use at most 200 characters."]
    return reason


def grant_standing_permission(
    session: Session,
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
    errors: Errors = {}
    person = _grantee(session, actor, person_id, errors)
    device = _granted_device(session, person, personal_device_id, errors)
    areas = _granted_areas(session, area_ids, device, errors)
    _check_dates(starts_on, ends_on, errors)
    reason = _checked_reason(reason, errors)
    if errors:
        raise ValidationFailed("Some details need correcting.", errors)
    assert person is not None and starts_on is not None and ends_on is not None  # each is checked above
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
    _announce_grant(session, actor, standing, person, areas)
    return standing


def _announce_grant(session: Session, actor: User, standing: StandingPermission, person: User, areas: list[Area]) -> None:
    """Audit the grant and tell the person."""
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
            "starts_on": standing.starts_on.isoformat(),
            "ends_on": standing.ends_on.isoformat(),
        },
        related={
            "user": person.id,
            "personal_device": standing.personal_device_id,
            "area": areas[0].id if len(areas) == 1 else None,
        },
    )
    notify(
        session,
        [person],
        kind="standing_permission.granted",
        title=f"Standing permission from {actor.display_name}",
        body=f"{standing.starts_on:%d/%m/%Y} to {standing.ends_on:%d/%m/%Y}: {standing.reason}",
        url="/requests",
        extra={"standing_permission_id": standing.id, "kind": "standing_permission.granted"},
    )


def end_standing_permission(session: Session, actor: User, standing_id: int) -> StandingPermission:
    """End a standing permission early; requests it already approved keep their end time."""
    if not actor.has_role(Role.APPROVER):
        raise Forbidden("Only approvers end standing permissions.")
    standing = (
        session.scalars(
            sa.select(StandingPermission)
            .where(StandingPermission.id == standing_id)
            .with_for_update(of=StandingPermission)
            .execution_options(populate_existing=True)
        )
        .unique()
        .one_or_none()
    )
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


def standing_permissions(session: Session, *, include_ended: bool = False) -> list[StandingPermission]:
    query = sa.select(StandingPermission)
    if not include_ended:
        today = to_local(utcnow()).date()
        query = query.where(StandingPermission.ended_at.is_(None), StandingPermission.ends_on >= today)
    return list(session.scalars(query.order_by(StandingPermission.ends_on, StandingPermission.id)).unique())


def standing_permissions_of(session: Session, person: User) -> list[StandingPermission]:
    return list(
        session.scalars(
            sa.select(StandingPermission).where(StandingPermission.person_id == person.id).order_by(StandingPermission.id.desc())
        ).unique()
    )


def grantable_devices(session: Session) -> list[PersonalDevice]:
    """Every active personal device, by owner's name: what a standing permission may name."""
    return list(
        session.scalars(
            sa.select(PersonalDevice)
            .join(PersonalDevice.owner)
            .where(PersonalDevice.status == DeviceStatus.ACTIVE.value)
            .order_by(User.display_name)
        )
    )
