"""Reading: a person's requests, the inbox, the Now board, status wording and "My data"."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.orm import Session

from app.clock import format_time
from app.models import (
    PermissionRequest,
    PersonalDevice,
    RequestStatus,
    Role,
    User,
)
from app.services.errors import NotFound
from app.services.permissions.common import name_of
from app.services.permissions.standing import standing_permissions_of
from app.services.personal_data import register_section

# Reading ----------------------------------------------------------------------------------------------

# A list of requests names people and devices: their roles and IMEIs load only if something asks for them.
LIST_OPTIONS = (
    so.defaultload(PermissionRequest.requester).lazyload(User.role_rows),
    so.defaultload(PermissionRequest.decided_by).lazyload(User.role_rows),
    so.defaultload(PermissionRequest.reviewed_by).lazyload(User.role_rows),
    so.defaultload(PermissionRequest.personal_device).lazyload(PersonalDevice.imeis),
    so.defaultload(PermissionRequest.personal_device).defaultload(PersonalDevice.owner).lazyload(User.role_rows),
    so.lazyload(PermissionRequest.standing_permission),
)


# A waiting (or unreviewed) request in the inbox names its requester and area, nothing else it links to:
# no joins of the device, its owner, the decider or a standing permission.
REQUESTER_AND_AREA = (
    so.joinedload(PermissionRequest.requester).lazyload(User.role_rows),
    so.joinedload(PermissionRequest.area),
    so.lazyload(PermissionRequest.decided_by),
    so.lazyload(PermissionRequest.reviewed_by),
    so.lazyload(PermissionRequest.personal_device),
    so.lazyload(PermissionRequest.standing_permission),
)
# Built once: the inbox runs it on every visit (a statement's cache key is worked out once per object).
_EMERGENCIES_TO_REVIEW = (
    sa.select(PermissionRequest)
    .options(*REQUESTER_AND_AREA)
    .where(PermissionRequest.emergency.is_(True), PermissionRequest.reviewed_at.is_(None))
    .order_by(PermissionRequest.created_at, PermissionRequest.id)
)


def requests_of(session: Session, user: User, limit: int = 50) -> list[PermissionRequest]:
    return list(
        session.scalars(
            sa.select(PermissionRequest)
            .options(*LIST_OPTIONS)
            .where(PermissionRequest.requester_id == user.id)
            .order_by(PermissionRequest.created_at.desc(), PermissionRequest.id.desc())
            .limit(limit)
        ).unique()
    )


def own_request(session: Session, user: User, request_id: int) -> PermissionRequest:
    """The person's own request, or NotFound: someone else's is indistinguishable from none."""
    request = session.get(PermissionRequest, request_id)
    if request is None or request.requester_id != user.id:
        raise NotFound("There is no such request of yours.")
    return request


def visible_request(session: Session, user: User, request_id: int) -> PermissionRequest:
    """Requesters see their own; approvers see all."""
    request = session.get(PermissionRequest, request_id)
    if request is None or (request.requester_id != user.id and not user.has_role(Role.APPROVER)):
        raise NotFound("There is no such request.")
    return request


def pending_requests(session: Session) -> list[PermissionRequest]:
    """The approvals inbox: oldest first."""
    return list(
        session.scalars(
            sa.select(PermissionRequest)
            .where(PermissionRequest.status == RequestStatus.PENDING.value)
            .order_by(PermissionRequest.created_at, PermissionRequest.id)
        ).unique()
    )


def emergencies_to_review(session: Session) -> list[PermissionRequest]:
    """Emergency overrides nobody has reviewed yet: oldest first."""
    return list(session.scalars(_EMERGENCIES_TO_REVIEW).unique())


def active_permissions(session: Session, now: datetime) -> list[PermissionRequest]:
    """The Now board: approved and not yet over, soonest to end first."""
    return list(
        session.scalars(
            sa.select(PermissionRequest)
            .options(*LIST_OPTIONS)
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
        return f"Approved until {format_time(request.approved_until)} by {name_of(request.decided_by)}"
    if status == RequestStatus.DENIED.value:
        return f"Denied by {name_of(request.decided_by)}"
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
def personal_data_section(session: Session, user: User) -> tuple[str, object]:
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
                    {"outcome": r.review_outcome, "note": r.review_note, "by": name_of(r.reviewed_by), "at": at(r.reviewed_at)}
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
