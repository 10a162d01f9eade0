"""Staff provisioning: the SCIM bearer tokens an admin makes, and the end-date notices already sent."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.clock import utcnow
from app.database import UTCDateTime
from app.extensions import Model


class ScimToken(Model):
    """A provisioning system's key (Entra ID, Google): it acts as that system, not as a person. Only the hash is kept."""

    __tablename__ = "scim_tokens"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(80))
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    prefix: so.Mapped[str] = so.mapped_column(sa.String(12))
    created_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    last_used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class EndDateNotice(Model):
    """The office was told that this person's account ends on this date (once per person per end date)."""

    __tablename__ = "end_date_notices"

    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    end_date: so.Mapped[date] = so.mapped_column(sa.Date, primary_key=True)
    sent_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
