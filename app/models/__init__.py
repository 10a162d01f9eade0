"""Typed SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from app.models.accounts import LoginAttempt, PasswordToken, Role, StaffType, User, UserRole, UserSession
from app.models.areas import Area, AreaRule
from app.models.assets import (
    AssetKind,
    AssetSearchTerm,
    AssetStatus,
    BookableBy,
    Loan,
    SchoolAsset,
    StockTake,
    StockTakeOutcome,
    StockTakeResult,
    StockTakeScan,
)
from app.models.audit import AuditCheckpoint, AuditEvent, AuditLink, AuditVerification
from app.models.bookings import Booking, BookingItem, BookingStatus, Kit, KitMember
from app.models.devices import DeviceKind, DeviceStatus, PersonalDevice, RegisteredImei
from app.models.identities import Identity, SignInProvider, SignInState
from app.models.mail import ApprovalMailWatch, MailKind, MailOutbox, MailPreference
from app.models.notifications import Notification
from app.models.passkeys import Passkey
from app.models.permissions import (
    PermissionRequest,
    RequestReason,
    RequestStatus,
    ReviewOutcome,
    StandingPermission,
    standing_permission_areas,
)
from app.models.policy import NoDeviceDeclaration, PolicyAcceptance, PolicyVersion
from app.models.provisioning import EndDateNotice, ScimToken
from app.models.push import ActionToken, PushOutbox, PushSubscription, PushUrgency, TokenAction
from app.models.settings import ApproverStatus, SchoolLogo, SchoolSetting
from app.models.submissions import FormSubmission
from app.models.tokens import ApiToken

__all__ = [
    "ActionToken",
    "ApiToken",
    "ApprovalMailWatch",
    "ApproverStatus",
    "Area",
    "AreaRule",
    "AssetKind",
    "AssetSearchTerm",
    "AssetStatus",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditLink",
    "AuditVerification",
    "BookableBy",
    "Booking",
    "BookingItem",
    "BookingStatus",
    "DeviceKind",
    "DeviceStatus",
    "EndDateNotice",
    "FormSubmission",
    "Identity",
    "Kit",
    "KitMember",
    "Loan",
    "LoginAttempt",
    "MailKind",
    "MailOutbox",
    "MailPreference",
    "NoDeviceDeclaration",
    "Notification",
    "Passkey",
    "PasswordToken",
    "PermissionRequest",
    "PersonalDevice",
    "PolicyAcceptance",
    "PolicyVersion",
    "PushOutbox",
    "PushSubscription",
    "PushUrgency",
    "RegisteredImei",
    "RequestReason",
    "RequestStatus",
    "ReviewOutcome",
    "Role",
    "SchoolAsset",
    "SchoolLogo",
    "SchoolSetting",
    "ScimToken",
    "SignInProvider",
    "SignInState",
    "StaffType",
    "StandingPermission",
    "StockTake",
    "StockTakeOutcome",
    "StockTakeResult",
    "StockTakeScan",
    "TokenAction",
    "User",
    "UserRole",
    "UserSession",
    "standing_permission_areas",
]
