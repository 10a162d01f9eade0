"""School-wide settings as key/value rows (JSON values), and each approver's away flag.

One table for every feature's settings, so the admin settings page can list and change them in one
place. Keys are namespaced by feature: ``permissions.escalation_minutes``, ``permissions.delegate_ids``.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.clock import utcnow
from app.database import UTCDateTime
from app.extensions import Model


class SchoolSetting(Model):
    __tablename__ = "school_settings"

    key: so.Mapped[str] = so.mapped_column(sa.String(80), primary_key=True)
    value: so.Mapped[str] = so.mapped_column(sa.Text, default="null")  # JSON
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))


class ApproverStatus(Model):
    """An approver's cover state: while away, new requests go to the others on duty (or the delegates)."""

    __tablename__ = "approver_statuses"

    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    away: so.Mapped[bool] = so.mapped_column(sa.Boolean, default=False)
    changed_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SchoolLogo(Model):
    """The school's logo image, in the database so every server of a deployment serves the same one.

    The ``school.logo`` setting names the current one by its SHA-256, which is also its URL (cached for
    ever: a new logo is a new address).
    """

    __tablename__ = "school_logos"

    digest: so.Mapped[str] = so.mapped_column(sa.String(64), primary_key=True)
    content_type: so.Mapped[str] = so.mapped_column(sa.String(40))
    data: so.Mapped[bytes] = so.mapped_column(sa.LargeBinary)
    uploaded_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    uploaded_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
