"""Sign-in identities from OpenID Connect providers, and the single-use state of a sign-in in progress."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.clock import utcnow
from app.database import UTCDateTime
from app.extensions import Model


class SignInProvider(enum.StrEnum):
    MICROSOFT = "microsoft"
    GOOGLE = "google"

    @property
    def label(self) -> str:
        return {"microsoft": "Microsoft", "google": "Google"}[self.value]


class Identity(Model):
    """A person's account at a provider (issuer + subject), linked to one Lanyard account.

    A person may have one from each provider; all of them lead to the same account.
    """

    __tablename__ = "identities"
    __table_args__ = (
        sa.UniqueConstraint("issuer", "subject", name="uq_identities_issuer_subject"),
        sa.CheckConstraint("provider IN ('microsoft', 'google')", name="known_provider"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    provider: so.Mapped[str] = so.mapped_column(sa.String(20))
    issuer: so.Mapped[str] = so.mapped_column(sa.String(255))
    subject: so.Mapped[str] = so.mapped_column(sa.String(255))
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    last_used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)


class SignInState(Model):
    """A sign-in sent to a provider and not yet come back: its state (hashed), nonce and PKCE verifier.

    Kept on the server so each can be used once: the callback marks the row used, and a replayed
    callback finds it used.
    """

    __tablename__ = "sign_in_states"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    state_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    provider: so.Mapped[str] = so.mapped_column(sa.String(20))
    nonce: so.Mapped[str] = so.mapped_column(sa.String(64))
    code_verifier: so.Mapped[str] = so.mapped_column(sa.String(128))
    next_url: so.Mapped[str] = so.mapped_column(sa.String(500), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    expires_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
