"""Pupil areas (classrooms, hall, EYFS unit, changing areas) and the secret token on each area's poster."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.clock import utcnow
from app.database import UTCDateTime
from app.extensions import Model
from app.models.checks import enum_check


class AreaRule(enum.StrEnum):
    ASK = "ask"
    SCHOOL_DEVICES_ONLY = "school-devices-only"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return {
            "ask": "Ask permission",
            "school-devices-only": "School devices only",
            "closed": "Closed to devices",
        }[self.value]

    @property
    def explanation(self) -> str:
        """One line for the poster and the request page, in the school's words."""
        return {
            "ask": "No phone or recording device in this room without the headteacher's permission. Scan to ask.",
            "school-devices-only": "Personal phones and recording devices are never allowed here; "
            "only school devices, with permission. Scan to ask.",
            "closed": "No phones or recording devices at all in this area, not even with permission.",
        }[self.value]


def new_poster_token() -> str:
    return secrets.token_urlsafe(32)


class Area(Model):
    __tablename__ = "areas"
    __table_args__ = (enum_check("rule", AreaRule, name="known_rule"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120), unique=True)
    rule: so.Mapped[str] = so.mapped_column(sa.String(24), default=AreaRule.ASK.value)
    # Kept in the clear because the poster is printed from it; rotating replaces it, so old posters stop working.
    poster_token: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True, default=new_poster_token)
    poster_rotated_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def rule_label(self) -> str:
        return AreaRule(self.rule).label

    @property
    def rule_explanation(self) -> str:
        return AreaRule(self.rule).explanation

    def __repr__(self) -> str:
        return f"<Area {self.id} {self.rule}>"
