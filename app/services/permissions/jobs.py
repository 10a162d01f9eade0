"""Timed jobs: idempotent, driven by an explicit ``now`` (expiry, escalation, unreviewed emergencies)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import format_time, to_local
from app.models import (
    PermissionRequest,
    RequestStatus,
)
from app.services.audit import record_audit_event
from app.services.notifications import notify
from app.services.permissions.asking import review_overdue_recipients
from app.services.permissions.common import REVIEW_WITHIN
from app.services.permissions.options import request_links
from app.services.permissions.routing import escalation_minutes, escalation_recipients

# Timed jobs: idempotent, driven by an explicit ``now`` ------------------------------------------------


@dataclass(frozen=True)
class JobReport:
    expired: int
    escalated: int
    reviews_overdue: int = 0


def _lock_and_load(session: Session, condition) -> list[PermissionRequest]:
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


def expire_due(session: Session, now: datetime) -> int:
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
            session,
            None,
            "permission.expired",
            "permission_request",
            request.id,
            {"was": was, "area_id": request.area_id},
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


def escalate_due(session: Session, now: datetime) -> int:
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
            {
                "notified_user_ids": [u.id for u in recipients],
                "waited_minutes": int((now - request.created_at).total_seconds() // 60),
            },
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


def escalate_unreviewed(session: Session, now: datetime) -> int:
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


def run_jobs(session: Session, now: datetime) -> JobReport:
    """Expire, escalate, then chase unreviewed emergency overrides. Safe to run any number of times, anywhere."""
    expired = expire_due(session, now)
    escalated = escalate_due(session, now)
    overdue = escalate_unreviewed(session, now)
    return JobReport(expired=expired, escalated=escalated, reviews_overdue=overdue)
