"""Email: the outbox of messages to send, each person's choice of optional mail, approval fallbacks."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.clock import utcnow
from app.database import UTCDateTime
from app.extensions import Model


class MailKind(enum.StrEnum):
    INVITATION = "invitation"
    PASSWORD_RESET = "password_reset"  # noqa: S105 (a kind of message, not a password)
    DEVICE_LOST = "device_lost"
    AUDIT_DIGEST = "audit_digest"
    LOAN_REMINDER = "loan_reminder"
    APPROVAL_WAITING = "approval_waiting"
    POLICY_REMINDER = "policy_reminder"

    @property
    def label(self) -> str:
        return {
            "invitation": "Invitation to Lanyard",
            "password_reset": "Password reset link",
            "device_lost": "Phones and devices reported lost or stolen",
            "audit_digest": "The daily audit log digest",
            "loan_reminder": "School equipment due back or overdue",
            "approval_waiting": "Permission requests waiting for you (when push notifications do not reach you)",
            "policy_reminder": "Reminders to read and accept the school's policy",
        }[self.value]

    @property
    def optional(self) -> bool:
        """The invitation and the password reset are answers to an action, never switched off; the policy
        reminder is the school asking what every member of staff must do."""
        return self not in (MailKind.INVITATION, MailKind.PASSWORD_RESET, MailKind.POLICY_REMINDER)


_KINDS = ", ".join(f"'{kind.value}'" for kind in MailKind)
_OPTIONAL_KINDS = ", ".join(f"'{kind.value}'" for kind in MailKind if kind.optional)


class MailOutbox(Model):
    """One email to one address; written in the transaction of the change it tells about.

    ``next_attempt_at`` doubles as the claim, as in the push outbox: a sender moves it past its send
    timeout while it sends. A password reset is queued ``prepared=False`` with only the address: the
    sender looks the person up and makes the link, so the request answers the same either way. Bodies
    are cleared once the message is settled (they may hold a set-password link).
    """

    __tablename__ = "mail_outbox"
    __table_args__ = (
        sa.CheckConstraint(f"kind IN ({_KINDS})", name="known_mail_kind"),
        sa.Index("ix_mail_outbox_due", "sent_at", "dead_at", "next_attempt_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(40))
    user_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    to_address: so.Mapped[str] = so.mapped_column(sa.String(254))
    subject: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    text_body: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    html_body: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    message_id: so.Mapped[str] = so.mapped_column(sa.String(255))
    list_unsubscribe: so.Mapped[str] = so.mapped_column(sa.String(255), default="")
    auto_submitted: so.Mapped[bool] = so.mapped_column(sa.Boolean, default=True)
    prepared: so.Mapped[bool] = so.mapped_column(sa.Boolean, default=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    attempts: so.Mapped[int] = so.mapped_column(sa.Integer, default=0)
    next_attempt_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    sent_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    dead_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    last_error: so.Mapped[str] = so.mapped_column(sa.String(255), default="")


class MailPreference(Model):
    """A person's choice for one optional kind of email; no row means the default (on)."""

    __tablename__ = "mail_preferences"
    __table_args__ = (sa.CheckConstraint(f"kind IN ({_OPTIONAL_KINDS})", name="known_optional_mail_kind"),)

    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(40), primary_key=True)
    enabled: so.Mapped[bool] = so.mapped_column(sa.Boolean, default=True)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


class ApprovalMailWatch(Model):
    """An approver told of a permission request: emailed once if it still waits after the set minutes
    and no push subscription of theirs works. ``settled_at`` is when that was decided, either way."""

    __tablename__ = "mail_approval_watches"
    __table_args__ = (
        sa.UniqueConstraint("request_id", "approver_id", name="uq_mail_approval_watch"),
        sa.Index("ix_mail_approval_watches_due", "settled_at", "notified_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    request_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("permission_requests.id", ondelete="CASCADE"))
    approver_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    notified_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    settled_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    emailed: so.Mapped[bool] = so.mapped_column(sa.Boolean, default=False)
