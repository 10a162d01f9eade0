"""One-time form keys: each submitted key is kept with its first result, so a double tap acts once."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.clock import utcnow
from app.database import UTCDateTime
from app.extensions import Model


class FormSubmission(Model):
    """A form key used once. Inserted in the same transaction as the change it guards.

    ``location`` is where the first answer sent the browser (recorded just after the change commits);
    a replay of the key is sent there too instead of acting again.
    """

    __tablename__ = "form_submissions"

    key: so.Mapped[str] = so.mapped_column(sa.String(64), primary_key=True)
    user_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    endpoint: so.Mapped[str] = so.mapped_column(sa.String(80), default="")
    status: so.Mapped[int | None] = so.mapped_column(sa.SmallInteger)
    location: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
