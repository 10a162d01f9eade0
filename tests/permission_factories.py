"""Build areas, requests and decisions for the permission tests through the real services."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import Area, AreaRule, AuditEvent, PermissionRequest, User
from app.services import areas, permissions


def committed(action: Callable, *args, **kwargs):
    """Run one service call in its own write transaction and commit it, as a request would."""
    db.session.rollback()
    with write_intent():
        result = action(db.session, *args, **kwargs)
        db.session.commit()
    return result


def make_area(admin: User, name: str = "Year 3 classroom", rule: str = AreaRule.ASK.value) -> Area:
    return committed(areas.create_area, admin, name=name, rule=rule)


def ask(requester: User, area: Area, device, *, reason: str = "urgent_call", duration: str = "one_hour", **extra) -> PermissionRequest:
    return committed(
        permissions.request_permission,
        requester,
        area,
        device_key=f"personal-{device.id}",
        reason=reason,
        duration=duration,
        **extra,
    )


def audit_actions(subject_type: str | None = None, subject_id: object = None) -> list[str]:
    query = sa.select(AuditEvent.action).order_by(AuditEvent.seq)
    if subject_type is not None:
        query = query.where(AuditEvent.subject_type == subject_type)
    if subject_id is not None:
        query = query.where(AuditEvent.subject_id == str(subject_id))
    return list(db.session.scalars(query))


def fresh(request: PermissionRequest) -> PermissionRequest:
    db.session.rollback()
    return db.session.get(PermissionRequest, request.id)
