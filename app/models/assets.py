"""School equipment: assets with QR-labelled tags, loans to staff, and stock-takes (journey J4)."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.clock import utcnow
from app.database import UTCDateTime
from app.extensions import Model
from app.models.accounts import User
from app.models.checks import enum_check

OPEN_LOAN = sa.text("returned_at IS NULL")


class AssetKind(enum.StrEnum):
    CAMERA = "camera"
    TABLET = "tablet"
    WORK_MOBILE = "work_mobile"
    LAPTOP = "laptop"
    VOICE_RECORDER = "voice_recorder"
    OTHER = "other"

    @property
    def label(self) -> str:
        return {
            "camera": "Camera",
            "tablet": "Tablet",
            "work_mobile": "Work mobile",
            "laptop": "Laptop",
            "voice_recorder": "Voice recorder",
            "other": "Other",
        }[self.value]

    @property
    def may_have_imei(self) -> bool:
        return self in (AssetKind.WORK_MOBILE, AssetKind.TABLET)


class AssetStatus(enum.StrEnum):
    AVAILABLE = "available"
    ON_LOAN = "on_loan"
    IN_REPAIR = "in_repair"
    LOST = "lost"
    RETIRED = "retired"

    @property
    def label(self) -> str:
        return {
            "available": "Available",
            "on_loan": "On loan",
            "in_repair": "In repair",
            "lost": "Lost",
            "retired": "Retired",
        }[self.value]


class BookableBy(enum.StrEnum):
    """Who may book an asset or a kit (issue 17). NULL in the column: not bookable at all."""

    EVERYONE = "everyone"
    APPROVER = "approver"
    OFFICE = "office"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return {
            "everyone": "All staff",
            "approver": "Approvers and the office",
            "office": "Office only",
            "admin": "Admins only",
        }[self.value]


class StockTakeOutcome(enum.StrEnum):
    PRESENT = "present"
    MISSING = "missing"
    ON_LOAN = "on_loan"
    UNEXPECTED = "unexpected"

    @property
    def label(self) -> str:
        return {"present": "Present", "missing": "Missing", "on_loan": "On loan", "unexpected": "Unexpected"}[self.value]


class SchoolAsset(Model):
    __tablename__ = "school_assets"
    __table_args__ = (
        enum_check("kind", AssetKind, name="known_kind"),
        enum_check("status", AssetStatus, name="known_status"),
        enum_check("bookable_by", BookableBy, name="known_bookable_by", nullable=True),
        sa.Index("ix_school_assets_status_tag", "status", "tag"),
        sa.Index("ix_school_assets_location_tag", "home_location", "tag"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    # Upper-case letters, digits and dashes: it is printed on the label and typed when a camera is not at hand.
    tag: so.Mapped[str] = so.mapped_column(sa.String(40), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120))
    kind: so.Mapped[str] = so.mapped_column(sa.String(20))
    make: so.Mapped[str] = so.mapped_column(sa.String(60), default="")
    model: so.Mapped[str] = so.mapped_column(sa.String(60), default="")
    serial: so.Mapped[str] = so.mapped_column(sa.String(60), default="")
    recording_capable: so.Mapped[bool] = so.mapped_column(sa.Boolean, default=False)
    status: so.Mapped[str] = so.mapped_column(sa.String(20), default=AssetStatus.AVAILABLE.value)
    home_location: so.Mapped[str] = so.mapped_column(sa.String(80), default="")
    notes: so.Mapped[str] = so.mapped_column(sa.String(1000), default="")
    last_audited_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    # Who may book it (app.models.bookings.BookableBy); NULL: not bookable.
    bookable_by: so.Mapped[str | None] = so.mapped_column(sa.String(20))
    retired_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    imei_row = so.relationship(
        "RegisteredImei", back_populates="asset", uselist=False, cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def imei(self) -> str | None:
        return self.imei_row.imei if self.imei_row is not None else None

    @property
    def kind_label(self) -> str:
        return AssetKind(self.kind).label

    @property
    def status_label(self) -> str:
        return AssetStatus(self.status).label

    @property
    def bookable_label(self) -> str:
        return BookableBy(self.bookable_by).label if self.bookable_by else "Not bookable"

    @property
    def make_model(self) -> str:
        return f"{self.make} {self.model}".strip()

    def __repr__(self) -> str:
        return f"<SchoolAsset {self.tag}>"


class AssetSearchTerm(Model):
    """The words of an asset's tag, name, make, model, serial and home, lower-cased, so a search for what
    a word starts with uses an index instead of reading every asset (50,000 in a large trust)."""

    __tablename__ = "asset_search_terms"
    __table_args__ = (sa.Index("ix_asset_search_terms_term", "term", "asset_id", postgresql_ops={"term": "text_pattern_ops"}),)

    asset_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("school_assets.id"), primary_key=True)
    term: so.Mapped[str] = so.mapped_column(sa.String(80), primary_key=True)


class Loan(Model):
    """One lending of an asset. Open while ``returned_at`` is empty; the database allows one open loan per asset."""

    __tablename__ = "loans"
    __table_args__ = (
        sa.Index("uq_loans_one_open_per_asset", "asset_id", unique=True, sqlite_where=OPEN_LOAN, postgresql_where=OPEN_LOAN),
        sa.Index("ix_loans_open_due", "due_on", sqlite_where=OPEN_LOAN, postgresql_where=OPEN_LOAN),
        sa.Index("ix_loans_asset_out", "asset_id", "out_at"),
        sa.Index("ix_loans_borrower_out", "borrower_id", "out_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    asset_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("school_assets.id"))
    borrower_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    issued_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    out_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    # A school date (Europe/London): "due Friday" means by the end of Friday in school, whatever UTC says.
    due_on: so.Mapped[date] = so.mapped_column(sa.Date)
    purpose: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    condition_out: so.Mapped[str] = so.mapped_column(sa.String(500), default="")
    returned_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    received_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    condition_in: so.Mapped[str] = so.mapped_column(sa.String(500), default="")
    damaged: so.Mapped[bool] = so.mapped_column(sa.Boolean, default=False)
    # The school date of the last reminder to the borrower, so a reminder goes at most once a day.
    last_reminded_on: so.Mapped[date | None] = so.mapped_column(sa.Date)
    # The borrower's terms for school equipment: the exact wording shown at check-out, and who accepted how.
    terms_text: so.Mapped[str] = so.mapped_column(sa.Text, default="", server_default="")
    terms_accepted_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    terms_accepted_via: so.Mapped[str | None] = so.mapped_column(sa.String(20))  # in_person or own_phone
    terms_recorded_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))

    asset: so.Mapped[SchoolAsset] = so.relationship(lazy="joined", innerjoin=True)
    borrower: so.Mapped[User] = so.relationship(foreign_keys=[borrower_id], lazy="joined", innerjoin=True)
    issued_by: so.Mapped[User] = so.relationship(foreign_keys=[issued_by_id], lazy="joined", innerjoin=True)
    received_by: so.Mapped[User | None] = so.relationship(foreign_keys=[received_by_id], lazy="joined")
    terms_recorded_by: so.Mapped[User | None] = so.relationship(foreign_keys=[terms_recorded_by_id], lazy="joined")

    @property
    def is_open(self) -> bool:
        return self.returned_at is None

    @property
    def terms_accepted(self) -> bool:
        return self.terms_accepted_at is not None

    @property
    def terms_via_label(self) -> str:
        return {"in_person": "in person at the office", "own_phone": "on their own phone"}.get(self.terms_accepted_via or "", "")

    def is_overdue(self, today: date) -> bool:
        return self.returned_at is None and self.due_on < today


class StockTake(Model):
    __tablename__ = "stocktakes"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    location: so.Mapped[str] = so.mapped_column(sa.String(80), default="")  # empty: every location
    started_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    started_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    closed_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    closed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime, index=True)

    started_by: so.Mapped[User] = so.relationship(foreign_keys=[started_by_id], lazy="joined", innerjoin=True)
    closed_by: so.Mapped[User | None] = so.relationship(foreign_keys=[closed_by_id], lazy="joined")

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def scope_label(self) -> str:
        return self.location or "Every location"


class StockTakeScan(Model):
    """A label read during a stock-take. Scanning the same tag again changes nothing (unique per stock-take)."""

    __tablename__ = "stocktake_scans"
    __table_args__ = (sa.UniqueConstraint("stocktake_id", "tag", name="uq_stocktake_scans_stocktake_tag"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    stocktake_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("stocktakes.id"))
    tag: so.Mapped[str] = so.mapped_column(sa.String(40))
    asset_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("school_assets.id"), index=True)  # None: unknown tag
    condition: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    scanned_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    scanned_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    asset: so.Mapped[SchoolAsset | None] = so.relationship(lazy="joined")


class StockTakeResult(Model):
    """The closing report, kept as it was at closing (loans and locations change afterwards)."""

    __tablename__ = "stocktake_results"
    __table_args__ = (
        enum_check("outcome", StockTakeOutcome, name="known_outcome"),
        sa.Index("ix_stocktake_results_stocktake_outcome", "stocktake_id", "outcome"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    stocktake_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("stocktakes.id"))
    asset_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("school_assets.id"), index=True)
    tag: so.Mapped[str] = so.mapped_column(sa.String(40))
    outcome: so.Mapped[str] = so.mapped_column(sa.String(20))
    condition: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    loan_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("loans.id"))
    borrower_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    loaned_since: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    asset: so.Mapped[SchoolAsset | None] = so.relationship(lazy="joined")
    borrower: so.Mapped[User | None] = so.relationship(lazy="joined")
    stocktake: so.Mapped[StockTake] = so.relationship(lazy="joined", innerjoin=True)

    @property
    def outcome_label(self) -> str:
        return StockTakeOutcome(self.outcome).label
