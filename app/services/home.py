"""What each person's Home page shows: the one thing to do now for each of their roles."""

from __future__ import annotations

import re
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import format_time, local_today
from app.models import Loan, Notification, PermissionRequest, PushSubscription, RequestStatus, User
from app.services import loans

# Notices that ask an approver to decide: once the request is decided they are news no more.
DECIDE_KINDS = ("permission.requested", "permission.escalated")
_REQUEST_URL = re.compile(r"^/(?:approvals|requests)/(\d+)$")


def pending_count(session: Session) -> int:
    """How many requests wait for a decision (the Approvals tab's count)."""
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(PermissionRequest)
            .where(PermissionRequest.status == RequestStatus.PENDING.value)
        )
        or 0
    )


def current_permissions(session: Session, user: User, now: datetime) -> list[PermissionRequest]:
    """The person's permissions in force now, soonest to end first."""
    return list(
        session.scalars(
            sa.select(PermissionRequest)
            .where(
                PermissionRequest.requester_id == user.id,
                PermissionRequest.status == RequestStatus.APPROVED.value,
                PermissionRequest.approved_until > now,
            )
            .order_by(PermissionRequest.approved_until, PermissionRequest.id)
        ).unique()
    )


def waiting_requests_of(session: Session, user: User) -> list[PermissionRequest]:
    """The person's own requests still waiting for a decision."""
    return list(
        session.scalars(
            sa.select(PermissionRequest)
            .where(PermissionRequest.requester_id == user.id, PermissionRequest.status == RequestStatus.PENDING.value)
            .order_by(PermissionRequest.id)
        ).unique()
    )


_LAST_DEVICE_ASKED_FOR = (
    sa.select(PermissionRequest.personal_device_id, PermissionRequest.asset_id)
    .where(PermissionRequest.requester_id == sa.bindparam("requester_id"))
    .order_by(PermissionRequest.id.desc())
    .limit(1)
)


def usual_device_key(session: Session, user: User, keys: list[str]) -> str:
    """The device the door form preselects: the one last used for a request, else the only one."""
    last = session.execute(_LAST_DEVICE_ASKED_FOR, {"requester_id": user.id}).first()
    if last is not None:
        key = f"personal-{last.personal_device_id}" if last.personal_device_id else f"asset-{last.asset_id}"
        if key in keys:
            return key
    return keys[0] if len(keys) == 1 else ""


def has_push(session: Session, user: User) -> bool:
    return (
        session.scalar(sa.select(sa.func.count()).select_from(PushSubscription).where(PushSubscription.user_id == user.id)) or 0
    ) > 0


def loans_due_today(session: Session) -> list[Loan]:
    """Open loans due back today (school date)."""
    today = local_today()
    query = sa.select(Loan).options(*loans.LIST_OPTIONS).where(Loan.returned_at.is_(None), Loan.due_on == today)
    return list(session.scalars(query.order_by(Loan.id)))


def overdue_loans(session: Session, limit: int = 20) -> list[Loan]:
    return loans.overdue_loans(session, limit=limit)


# Notices that follow their subject ------------------------------------------------------------------


def request_id_of(notice: Notification) -> int | None:
    """The permission request a notice is about, read from its link."""
    if not notice.kind.startswith("permission."):
        return None
    return _request_id_in(notice.url)


def notice_requests(session: Session, notices: list[Notification]) -> dict[int, PermissionRequest]:
    """Each permission notice's request, keyed by notice id, loaded in one query."""
    wanted = {n.id: rid for n in notices if (rid := request_id_of(n)) is not None}
    if not wanted:
        return {}
    found = {
        r.id: r
        for r in session.scalars(sa.select(PermissionRequest).where(PermissionRequest.id.in_(set(wanted.values())))).unique()
    }
    return {notice_id: found[rid] for notice_id, rid in wanted.items() if rid in found}


def is_settled(notice: Notification, asked: PermissionRequest | None) -> bool:
    """A request to decide that is no longer waiting is not news."""
    return asked is not None and notice.kind in DECIDE_KINDS and asked.status != RequestStatus.PENDING.value


def is_new(notice: Notification, asked: PermissionRequest | None) -> bool:
    return notice.read_at is None and not is_settled(notice, asked)


def request_state(asked: PermissionRequest) -> str:
    """The request's state now, in a few words for a notice (read by the requester and approvers alike)."""
    status = asked.status
    if status == RequestStatus.PENDING.value:
        return "Waiting for a decision"
    if status == RequestStatus.APPROVED.value:
        until = format_time(asked.approved_until)
        if asked.emergency:
            return f"Emergency override, approved until {until}"
        if asked.decided_by is None:
            return f"Approved until {until} by a standing permission"
        return f"Approved until {until} by {asked.decided_by.display_name}"
    if status == RequestStatus.DENIED.value:
        return f"Denied by {asked.decided_by.display_name}" if asked.decided_by else "Denied"
    if status == RequestStatus.WITHDRAWN.value:
        return "Withdrawn by the requester"
    if status == RequestStatus.EXPIRED.value:
        return "Expired"
    return f"Ended at {format_time(asked.ended_at)}"


# Built once: drawn on every page (a statement's cache key is worked out once per statement object).
_UNREAD_NOTICES = sa.select(Notification.kind, Notification.url).where(
    Notification.user_id == sa.bindparam("user_id"), Notification.read_at.is_(None)
)


def unread_count(session: Session, user: User) -> int:
    """Unread notices, not counting requests to decide that someone has already decided.

    Drawn on every page, so it reads columns, never whole notices or requests (a request loads six
    related rows with it).
    """
    unread = session.execute(_UNREAD_NOTICES, {"user_id": user.id}).all()
    to_decide = [_request_id_in(url) for kind, url in unread if kind in DECIDE_KINDS]
    asked = {rid for rid in to_decide if rid is not None}
    if not asked:
        return len(unread)
    settled = set(
        session.scalars(
            sa.select(PermissionRequest.id).where(
                PermissionRequest.id.in_(asked), PermissionRequest.status != RequestStatus.PENDING.value
            )
        )
    )
    return len(unread) - sum(1 for rid in to_decide if rid in settled)


def _request_id_in(url: str | None) -> int | None:
    match = _REQUEST_URL.match(url or "")
    return int(match.group(1)) if match else None
