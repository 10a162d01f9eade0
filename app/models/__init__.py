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
from app.models.audit import AuditEvent, AuditLink, AuditVerification
from app.models.devices import DeviceKind, DeviceStatus, PersonalDevice, RegisteredImei
from app.models.notifications import Notification
from app.models.passkeys import Passkey
from app.models.tokens import ApiToken

__all__ = [
    "ApiToken",
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
    "AuditLink",
    "AuditVerification",
    "DeviceKind",
    "DeviceStatus",
    "LoginAttempt",
    "Notification",
    "Passkey",
    "PasswordToken",
    "PersonalDevice",
    "RegisteredImei",
    "Role",
    "User",
    "UserRole",
    "UserSession",
]
