"""Everything Lanyard holds about one person, for the "My data" download (subject access)."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import AuditEvent, Notification, User
from app.services.devices import devices_of

Section = Callable[[Session, User], tuple[str, object]]
_sections: list[Section] = []


def register_section(section: Section) -> Section:
    """Let a feature add what it keeps about a person (loans, requests...) to the export."""
    _sections.append(section)
    return section


def export_person(session: Session, user: User) -> dict:
    data: dict[str, object] = {
        "person": {
            "id": user.id,
            "email": user.email,
            "name": user.display_name,
            "roles": sorted(r.value for r in user.roles),
            "active": user.is_active_account,
            "created_at": user.created_at.isoformat(),
        },
        "devices": [
            {
                "id": d.id,
                "kind": d.kind,
                "make": d.make,
                "model": d.model,
                "description": d.description,
                "serial": d.serial,
                "imei1": d.imei1,
                "imei2": d.imei2,
                "status": d.status,
                "reported_at": d.reported_at.isoformat() if d.reported_at else None,
                "crime_reference": d.crime_reference,
                "created_at": d.created_at.isoformat(),
            }
            for d in devices_of(session, user, include_retired=True)
        ],
        "notifications": [
            {"title": n.title, "body": n.body, "created_at": n.created_at.isoformat()}
            for n in session.scalars(sa.select(Notification).where(Notification.user_id == user.id).order_by(Notification.id))
        ],
        "audit_events_about_you": [
            {"at": e.occurred_at.isoformat(), "action": e.action, "subject": f"{e.subject_type}:{e.subject_id}"}
            for e in session.scalars(sa.select(AuditEvent).where(AuditEvent.actor_id == user.id).order_by(AuditEvent.seq))
        ],
    }
    for section in _sections:
        key, value = section(session, user)
        data[key] = value
    return data
