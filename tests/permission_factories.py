"""Build areas, requests and decisions for the permission tests through the real services."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import has_app_context
from flask.testing import FlaskClient

from app.database import write_intent
from app.extensions import db
from app.models import Area, AreaRule, AuditEvent, PermissionRequest, Role, User
from app.services import areas, permissions
from tests.factories import make_device, make_user

NINE = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # the frozen clock (GMT: school time is UTC)
EMERGENCY = "A pupil is having a seizure and I must call the parent now."


def make_school() -> dict:
    """A head, a deputy, an admin, a member of staff with a phone, and an ask-rule classroom."""
    people = {
        "head": make_user(Role.APPROVER, name="Mrs A Adeyemi"),
        "deputy": make_user(Role.APPROVER, name="Mr D Okafor"),
        "admin": make_user(Role.ADMIN, name="Mr T Hughes"),
        "staff": make_user(name="Mr B Clarke"),
    }
    people["phone"] = make_device(people["staff"], model="iPhone 13")
    people["area"] = make_area(people["admin"], "Year 3 classroom")
    return people


def committed(action: Callable, *args, **kwargs):
    """Run one service call in its own write transaction and commit it, as a request would."""
    db.session.rollback()
    with write_intent():
        result = action(db.session, *args, **kwargs)
        db.session.commit()
    return result


def make_area(admin: User, name: str = "Year 3 classroom", rule: str = AreaRule.ASK.value) -> Area:
    return committed(areas.create_area, admin, name=name, rule=rule)


def ask(
    requester: User, area: Area, device, *, reason: str = "urgent_call", duration: str = "one_hour", **extra
) -> PermissionRequest:
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


class Browser:
    """A test client whose every request runs in its own app context, as a real request does.

    Like the suite's ``IsolatedClient``, but also usable from a thread of its own (where there is no
    test app context to roll back), as the race tests need.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.client = FlaskClient(app, app.response_class, use_cookies=True)

    def _call(self, method: str, *args, **kwargs):
        if has_app_context():  # (a thread of its own has none)
            db.session.rollback()  # the test's own reads must not hold SQLite's lock
        with self.app.app_context():
            return getattr(self.client, method)(*args, **kwargs)

    def get(self, *args, **kwargs):
        return self._call("get", *args, **kwargs)

    def post(self, *args, **kwargs):
        return self._call("post", *args, **kwargs)

    def patch(self, *args, **kwargs):
        return self._call("patch", *args, **kwargs)
