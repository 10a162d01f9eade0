"""Equipment bookings (issue 17): kits of assets, who may book what, and bookings by lesson period or time.

A booking names one asset or one kit; ``booking_items`` holds one row per asset it covers (a kit booking
makes one row per member), with the slot copied. On PostgreSQL an exclusion constraint over
``tstzrange(starts_at, ends_at, '[)')`` on the active rows makes two overlapping bookings of one asset
impossible (it is created by migration ``0018_bookings``, PostgreSQL only); on SQLite the service checks
for overlap inside the write transaction, which every writer holds with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.clock import utcnow
from app.database import UTCDateTime
from app.extensions import Model
from app.models.accounts import User
from app.models.assets import BookableBy, Loan, SchoolAsset
from app.models.checks import enum_check

__all__ = ["BookableBy", "Booking", "BookingItem", "BookingStatus", "Kit", "KitMember"]


class BookingStatus(enum.StrEnum):
    BOOKED = "booked"
    COLLECTED = "collected"
    RELEASED = "released"  # not collected in time
    CANCELLED = "cancelled"
    COMPLETED = "completed"

    @property
    def label(self) -> str:
        return {
            "booked": "Booked",
            "collected": "Collected",
            "released": "Released (not collected)",
            "cancelled": "Cancelled",
            "completed": "Completed",
        }[self.value]

    @property
    def holds_the_slot(self) -> bool:
        return self in (BookingStatus.BOOKED, BookingStatus.COLLECTED)


class Kit(Model):
    """A group of assets lent together (an iPad trolley with its iPads and charger), with its own QR label."""

    __tablename__ = "kits"
    __table_args__ = (enum_check("bookable_by", BookableBy, name="known_bookable_by", nullable=True),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120), unique=True)
    # Same alphabet as an asset's tag (upper-case letters, digits, dashes); the services keep the two apart.
    tag: so.Mapped[str] = so.mapped_column(sa.String(40), unique=True)
    description: so.Mapped[str] = so.mapped_column(sa.String(500), default="")
    bookable_by: so.Mapped[str | None] = so.mapped_column(sa.String(20))
    retired_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    members: so.Mapped[list[KitMember]] = so.relationship(
        back_populates="kit", lazy="selectin", order_by="KitMember.asset_id", cascade="all, delete-orphan"
    )

    @property
    def is_retired(self) -> bool:
        return self.retired_at is not None

    @property
    def bookable_label(self) -> str:
        return BookableBy(self.bookable_by).label if self.bookable_by else "Not bookable"

    def __repr__(self) -> str:
        return f"<Kit {self.tag}>"


class KitMember(Model):
    """An asset in a kit; an asset is in at most one kit (the primary key is the asset)."""

    __tablename__ = "kit_members"

    asset_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("school_assets.id"), primary_key=True)
    kit_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("kits.id"), index=True)
    added_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    kit: so.Mapped[Kit] = so.relationship(back_populates="members")
    asset: so.Mapped[SchoolAsset] = so.relationship(lazy="joined", innerjoin=True)


class Booking(Model):
    """One booking of an asset or a kit for a slot, by lesson periods (``periods`` e.g. "P3-P4") or a time range."""

    __tablename__ = "bookings"
    __table_args__ = (
        enum_check("status", BookingStatus, name="known_status"),
        sa.CheckConstraint("(asset_id IS NULL) <> (kit_id IS NULL)", name="asset_or_kit"),
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        sa.Index("ix_bookings_for_starts", "booked_for_id", "starts_at"),
        sa.Index("ix_bookings_asset_starts", "asset_id", "starts_at"),
        sa.Index("ix_bookings_kit_starts", "kit_id", "starts_at"),
        sa.Index("ix_bookings_status_starts", "status", "starts_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    booked_for_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    booked_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    asset_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("school_assets.id"))
    kit_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("kits.id"))
    starts_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    ends_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    periods: so.Mapped[str | None] = so.mapped_column(sa.String(40))  # "P3-P4"; NULL for a time range
    purpose: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    status: so.Mapped[str] = so.mapped_column(sa.String(20), default=BookingStatus.BOOKED.value)
    cancelled_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    cancelled_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    # The loan made when a single asset's booking is collected (a kit's loans are on its items).
    loan_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("loans.id"))
    collected_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    released_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    booked_for: so.Mapped[User] = so.relationship(foreign_keys=[booked_for_id], lazy="joined", innerjoin=True)
    booked_by: so.Mapped[User] = so.relationship(foreign_keys=[booked_by_id], lazy="joined", innerjoin=True)
    cancelled_by: so.Mapped[User | None] = so.relationship(foreign_keys=[cancelled_by_id], lazy="joined")
    asset: so.Mapped[SchoolAsset | None] = so.relationship(lazy="joined")
    kit: so.Mapped[Kit | None] = so.relationship(lazy="joined")
    loan: so.Mapped[Loan | None] = so.relationship(lazy="select")
    items: so.Mapped[list[BookingItem]] = so.relationship(
        back_populates="booking", lazy="selectin", order_by="BookingItem.asset_id", cascade="all, delete-orphan"
    )

    @property
    def status_label(self) -> str:
        return BookingStatus(self.status).label

    @property
    def thing_name(self) -> str:
        """What was booked, in words: the asset's or the kit's name."""
        if self.kit is not None:
            return self.kit.name
        return self.asset.name if self.asset is not None else ""

    @property
    def is_open(self) -> bool:
        return BookingStatus(self.status).holds_the_slot


class BookingItem(Model):
    """One asset of a booking for its slot. Active rows of one asset never overlap (see the module docstring)."""

    __tablename__ = "booking_items"
    __table_args__ = (
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        sa.Index("ix_booking_items_asset_starts", "asset_id", "starts_at"),
        sa.Index("ix_booking_items_booking", "booking_id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    booking_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("bookings.id"))
    asset_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("school_assets.id"))
    starts_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    ends_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    # True while the booking holds the slot (booked or collected); cleared on cancel, release and completion.
    active: so.Mapped[bool] = so.mapped_column(sa.Boolean, default=True)
    loan_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("loans.id"))

    booking: so.Mapped[Booking] = so.relationship(back_populates="items")
    asset: so.Mapped[SchoolAsset] = so.relationship(lazy="joined", innerjoin=True)
