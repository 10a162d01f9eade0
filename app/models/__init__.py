"""Typed SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from app.models.accounts import LoginAttempt, PasswordToken, Role, User, UserRole, UserSession
from app.models.assets import (
    AssetKind,
    AssetSearchTerm,
    AssetStatus,
    Loan,
    SchoolAsset,
    StockTake,
    StockTakeOutcome,
    StockTakeResult,
    StockTakeScan,
)
from app.models.audit import AuditEvent
from app.models.devices import DeviceKind, DeviceStatus, PersonalDevice, RegisteredImei
from app.models.notifications import Notification

__all__ = [
    "AssetKind",
    "AssetSearchTerm",
    "AssetStatus",
    "Loan",
    "SchoolAsset",
    "StockTake",
    "StockTakeOutcome",
    "StockTakeResult",
    "StockTakeScan",
    "AuditEvent",
    "DeviceKind",
    "DeviceStatus",
    "LoginAttempt",
    "Notification",
    "PasswordToken",
    "PersonalDevice",
    "RegisteredImei",
    "Role",
    "User",
    "UserRole",
    "UserSession",
]
