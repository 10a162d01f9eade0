"""Personal phones and recording devices that staff register, and the IMEIs that identify them."""

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


class DeviceKind(enum.StrEnum):
    SMARTPHONE = "smartphone"
    SMARTWATCH = "smartwatch"
    TABLET = "tablet"
    CAMERA = "camera"
    OTHER_RECORDING = "other_recording"

    @property
    def label(self) -> str:
        return {
            "smartphone": "Smartphone",
            "smartwatch": "Smartwatch",
            "tablet": "Tablet",
            "camera": "Camera",
            "other_recording": "Other recording device",
        }[self.value]


class DeviceStatus(enum.StrEnum):
    ACTIVE = "active"
    LOST = "lost"
    STOLEN = "stolen"
    RETIRED = "retired"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class PersonalDevice(Model):
    __tablename__ = "personal_devices"
    __table_args__ = (
        enum_check("kind", DeviceKind, name="known_kind"),
        enum_check("status", DeviceStatus, name="known_status"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    owner_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(20))
    make: so.Mapped[str] = so.mapped_column(sa.String(60))
    model: so.Mapped[str] = so.mapped_column(sa.String(60))
    description: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    serial: so.Mapped[str] = so.mapped_column(sa.String(60), default="")
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default=DeviceStatus.ACTIVE.value)
    reported_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    crime_reference: so.Mapped[str] = so.mapped_column(sa.String(60), default="")
    loss_notes: so.Mapped[str] = so.mapped_column(sa.String(500), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    owner: so.Mapped[User] = so.relationship(lazy="joined")
    imeis: so.Mapped[list[RegisteredImei]] = so.relationship(
        back_populates="device",
        cascade="all, delete-orphan",
        order_by="RegisteredImei.slot",
        lazy="selectin",
    )

    @property
    def imei1(self) -> str | None:
        return next((row.imei for row in self.imeis if row.slot == 1), None)

    @property
    def imei2(self) -> str | None:
        return next((row.imei for row in self.imeis if row.slot == 2), None)

    @property
    def kind_label(self) -> str:
        return DeviceKind(self.kind).label

    @property
    def status_label(self) -> str:
        return DeviceStatus(self.status).label

    @property
    def name(self) -> str:
        return f"{self.make} {self.model}".strip()

    @property
    def is_current(self) -> bool:
        return self.status != DeviceStatus.RETIRED.value


class RegisteredImei(Model):
    """One IMEI, one row: the primary key makes an IMEI unique across personal devices and school assets.

    Each row belongs to exactly one personal device or one school asset (a work mobile).
    """

    __tablename__ = "registered_imeis"
    __table_args__ = (
        sa.CheckConstraint("slot IN (1, 2)", name="known_slot"),
        sa.CheckConstraint("(device_id IS NULL) <> (asset_id IS NULL)", name="one_holder"),
        sa.UniqueConstraint("device_id", "slot", name="uq_registered_imeis_device_slot"),
    )

    imei: so.Mapped[str] = so.mapped_column(sa.String(15), primary_key=True)
    device_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("personal_devices.id"), index=True)
    asset_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("school_assets.id"), unique=True)
    slot: so.Mapped[int] = so.mapped_column(sa.SmallInteger)

    device: so.Mapped[PersonalDevice | None] = so.relationship(back_populates="imeis")
    asset = so.relationship("SchoolAsset", back_populates="imei_row")
