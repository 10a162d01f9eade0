"""Typed SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from app.models.accounts import LoginAttempt, PasswordToken, Role, User, UserRole, UserSession
from app.models.audit import AuditEvent
from app.models.devices import DeviceKind, DeviceStatus, PersonalDevice, RegisteredImei
from app.models.notifications import Notification
from app.models.push import ActionToken, PushOutbox, PushSubscription

__all__ = [
    "ActionToken",
    "AuditEvent",
    "DeviceKind",
    "DeviceStatus",
    "LoginAttempt",
    "Notification",
    "PasswordToken",
    "PersonalDevice",
    "PushOutbox",
    "PushSubscription",
    "RegisteredImei",
    "Role",
    "User",
    "UserRole",
    "UserSession",
]
