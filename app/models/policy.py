"""The school's published policy, each person's acceptance of a version, and the "no phone" declaration."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.clock import utcnow
from app.database import UTCDateTime
from app.extensions import Model
from app.models.accounts import User


class PolicyVersion(Model):
    """One published version of the policy: its text, or a PDF kept in the database (checked on upload).

    The newest row is the current version; publishing a new one asks everyone to accept again.
    """

    __tablename__ = "policy_versions"
    __table_args__ = (sa.CheckConstraint("body <> '' OR pdf_data IS NOT NULL", name="has_text_or_pdf"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    label: so.Mapped[str] = so.mapped_column(sa.String(80))
    title: so.Mapped[str] = so.mapped_column(sa.String(200))
    body: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    pdf_data: so.Mapped[bytes | None] = so.mapped_column(sa.LargeBinary)
    pdf_digest: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    review_date: so.Mapped[date] = so.mapped_column(sa.Date)
    published_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    published_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    # When the reminder before the review date went out (once per version).
    review_reminder_sent_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    @property
    def has_pdf(self) -> bool:
        return self.pdf_digest is not None


class PolicyAcceptance(Model):
    """A person's acceptance of one version: once each, never changed."""

    __tablename__ = "policy_acceptances"
    __table_args__ = (sa.UniqueConstraint("policy_id", "user_id", name="uq_policy_acceptance_once"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    policy_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("policy_versions.id"))
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    accepted_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    policy: so.Mapped[PolicyVersion] = so.relationship(lazy="joined")
    user: so.Mapped[User] = so.relationship(lazy="joined")


class NoDeviceDeclaration(Model):
    """ "I do not bring a personal phone or recording device to school": one row while it stands."""

    __tablename__ = "no_device_declarations"

    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    declared_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
