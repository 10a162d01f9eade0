"""Web Push: the browsers people subscribed, the outbox of messages to send, one-time action tokens."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.clock import utcnow
from app.database import UTCDateTime
from app.extensions import Model
from app.models.accounts import User
from app.models.checks import enum_check


class PushUrgency(enum.StrEnum):
    """The Web Push ``Urgency`` header (RFC 8030 section 5.3), in rising order."""

    VERY_LOW = "very-low"
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"

    @property
    def label(self) -> str:
        return self.value.replace("-", " ").capitalize()


class TokenAction(enum.StrEnum):
    """What a notification's one-time action token does."""

    APPROVE = "approve"
    DENY = "deny"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class PushSubscription(Model):
    """One browser's push subscription (a person may have several)."""

    __tablename__ = "push_subscriptions"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    endpoint: so.Mapped[str] = so.mapped_column(sa.String(2048), unique=True)
    p256dh: so.Mapped[str] = so.mapped_column(sa.String(128))
    auth: so.Mapped[str] = so.mapped_column(sa.String(64))
    user_agent: so.Mapped[str] = so.mapped_column(sa.String(255), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    last_success_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    failure_count: so.Mapped[int] = so.mapped_column(sa.Integer, default=0)

    user: so.Mapped[User] = so.relationship()
    messages: so.Mapped[list[PushOutbox]] = so.relationship(
        back_populates="subscription", cascade="all, delete-orphan", passive_deletes=True
    )

    def info(self) -> dict:
        """The subscription as pywebpush and the browser's PushSubscription.toJSON() spell it."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


class PushOutbox(Model):
    """A message waiting to go to one subscription; written in the transaction of the event it tells.

    ``next_attempt_at`` doubles as the claim: a sender moves it past the send timeout while it sends,
    so a second sender skips the row, and a sender that died lets it fall due again.
    """

    __tablename__ = "push_outbox"
    __table_args__ = (
        enum_check("urgency", PushUrgency, name="known_urgency"),
        sa.Index("ix_push_outbox_due", "sent_at", "dead_at", "next_attempt_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    subscription_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("push_subscriptions.id", ondelete="CASCADE"), index=True)
    payload: so.Mapped[str] = so.mapped_column(sa.Text)
    urgency: so.Mapped[str] = so.mapped_column(sa.String(10), default="normal")
    ttl: so.Mapped[int] = so.mapped_column(sa.Integer)
    topic: so.Mapped[str | None] = so.mapped_column(sa.String(32))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    attempts: so.Mapped[int] = so.mapped_column(sa.Integer, default=0)
    next_attempt_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    sent_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    last_error: so.Mapped[str] = so.mapped_column(sa.String(255), default="")
    dead_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    subscription: so.Mapped[PushSubscription] = so.relationship(back_populates="messages")


class ActionToken(Model):
    """A one-time credential behind a notification's Approve or Deny button; only its hash is kept."""

    __tablename__ = "action_tokens"
    __table_args__ = (
        enum_check("action", TokenAction, name="known_action"),
        sa.Index("ix_action_tokens_subject", "subject_type", "subject_id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    approver_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    subject_type: so.Mapped[str] = so.mapped_column(sa.String(40))
    subject_id: so.Mapped[int] = so.mapped_column(sa.Integer)
    action: so.Mapped[str] = so.mapped_column(sa.String(10))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    expires_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    approver: so.Mapped[User] = so.relationship()
