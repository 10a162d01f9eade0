"""One tap, one request; one device, one place: device locks, a second wait refused, other places ended."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import format_time
from app.models import (
    Area,
    PermissionRequest,
    RequestStatus,
    User,
)
from app.services.audit import record_audit_event
from app.services.notifications import notify
from app.services.permissions.common import AlreadyAsked
from app.services.permissions.options import DeviceOption, request_links

# One tap, one request; one device, one place ------------------------------------------------------

# PostgreSQL advisory lock spaces (two-key form: apart from the one-key locks used elsewhere).
_PERSONAL_DEVICE_LOCK = 7101
_ASSET_LOCK = 7102


def _lock_device(session: Session, personal_device_id: int | None, asset_id: int | None) -> None:
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


def refuse_second_wait(session: Session, requester: User, area: Area, option: DeviceOption, now: datetime) -> None:
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


def end_other_places(session: Session, actor: User | None, approved: PermissionRequest, now: datetime) -> list[PermissionRequest]:
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
        assert other is not None  # locked above
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


def moved_from(session: Session, active: list[PermissionRequest]) -> dict[int, PermissionRequest]:
    """For the Now board: the approval each of ``active`` replaced elsewhere, keyed by the active request's id."""
    if not active:
        return {}
    replaced = session.scalars(
        sa.select(PermissionRequest)
        .where(PermissionRequest.superseded_by_id.in_([r.id for r in active]))
        .order_by(PermissionRequest.id)
    ).unique()
    return {r.superseded_by_id: r for r in replaced if r.superseded_by_id is not None}
