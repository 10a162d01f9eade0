"""Permission to take a device into a pupil area: requests at the door and standing permissions."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.clock import utcnow
from app.database import UTCDateTime
from app.extensions import Model, db
from app.models.accounts import User
from app.models.areas import Area
from app.models.checks import enum_check
from app.models.devices import PersonalDevice


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    ENDED = "ended"

    @property
    def label(self) -> str:
        return {
            "pending": "Waiting for a decision",
            "approved": "Approved",
            "denied": "Denied",
            "withdrawn": "Withdrawn",
            "expired": "Expired",
            "ended": "Ended",
        }[self.value]


class RequestReason(enum.StrEnum):
    MEDICAL = "medical"
    URGENT_CALL = "urgent_call"
    LEARNING_EVIDENCE = "learning_evidence"
    LESSON_ACTIVITY = "lesson_activity"
    OTHER = "other"

    @property
    def label(self) -> str:
        return {
            "medical": "Medical need",
            "urgent_call": "Expecting an urgent call",
            "learning_evidence": "Photos or video for learning evidence",
            "lesson_activity": "Lesson activity",
            "other": "Other",
        }[self.value]


class ReviewOutcome(enum.StrEnum):
    """An approver's judgement of an emergency override, recorded once, within 24 hours."""

    JUSTIFIED = "justified"
    NOT_JUSTIFIED = "not_justified"

    @property
    def label(self) -> str:
        return {"justified": "justified", "not_justified": "not justified"}[self.value]


class PermissionRequest(Model):
    __tablename__ = "permission_requests"
    __table_args__ = (
        enum_check("status", RequestStatus, name="known_status"),
        enum_check("reason", RequestReason, name="known_reason"),
        sa.CheckConstraint("personal_device_id IS NOT NULL OR asset_id IS NOT NULL", name="names_a_device"),
        enum_check("review_outcome", ReviewOutcome, name="known_review_outcome", nullable=True),
        sa.Index("ix_permission_requests_status_created", "status", "created_at"),
        sa.Index("ix_permission_requests_requester_created", "requester_id", "created_at"),
        # The inbox's "Emergency overrides to review" and the 24-hour job read only unreviewed overrides.
        sa.Index("ix_permission_requests_emergency_reviewed", "emergency", "reviewed_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    requester_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    area_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("areas.id"), index=True)
    personal_device_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("personal_devices.id"), index=True)
    # A school asset on loan to the requester (offered by the equipment feature's device option provider).
    asset_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("school_assets.id"), index=True)
    device_label: so.Mapped[str] = so.mapped_column(sa.String(120), default="")
    reason: so.Mapped[str] = so.mapped_column(sa.String(20))
    reason_other: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    wanted_until: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default=RequestStatus.PENDING.value)
    decided_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    decided_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    decision_note: so.Mapped[str] = so.mapped_column(sa.String(300), default="")
    approved_until: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    standing_permission_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("standing_permissions.id", name="fk_permission_requests_standing_permission")
    )
    ended_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    escalated_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    # Emergency override: approved at once without a decision, the head and DSL told, reviewed within 24 h.
    emergency: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    emergency_reason: so.Mapped[str] = so.mapped_column(sa.String(300), default="", server_default="")
    reviewed_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    reviewed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    review_outcome: so.Mapped[str | None] = so.mapped_column(sa.String(15))
    review_note: so.Mapped[str] = so.mapped_column(sa.String(300), default="", server_default="")
    review_escalated_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    # One device, one place: the approval elsewhere that ended this one (the Now board says where it moved).
    superseded_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("permission_requests.id", name="fk_permission_requests_superseded_by"), index=True
    )

    requester: so.Mapped[User] = so.relationship(foreign_keys=[requester_id], lazy="joined")
    decided_by: so.Mapped[User | None] = so.relationship(foreign_keys=[decided_by_id], lazy="joined")
    reviewed_by: so.Mapped[User | None] = so.relationship(foreign_keys=[reviewed_by_id], lazy="joined")
    area: so.Mapped[Area] = so.relationship(lazy="joined")
    personal_device: so.Mapped[PersonalDevice | None] = so.relationship(lazy="joined")
    standing_permission: so.Mapped[StandingPermission | None] = so.relationship(lazy="joined")

    @property
    def status_label(self) -> str:
        label = RequestStatus(self.status).label
        if not self.emergency:
            return label
        if self.status == RequestStatus.APPROVED.value:
            return "Emergency override"
        return f"{label} (emergency override)"

    @property
    def review_outcome_label(self) -> str:
        return ReviewOutcome(self.review_outcome).label if self.review_outcome else ""

    @property
    def review_label(self) -> str:
        """The review's state in a few words: "to be reviewed", or "reviewed by Mrs A: justified"."""
        if not self.emergency:
            return ""
        if self.reviewed_at is None or self.reviewed_by is None:
            return "to be reviewed"
        return f"reviewed by {self.reviewed_by.display_name}: {self.review_outcome_label}"

    @property
    def reason_label(self) -> str:
        if self.reason == RequestReason.OTHER.value and self.reason_other:
            return self.reason_other
        return RequestReason(self.reason).label

    @property
    def is_open(self) -> bool:
        return self.status in (RequestStatus.PENDING.value, RequestStatus.APPROVED.value)


standing_permission_areas = sa.Table(
    "standing_permission_areas",
    db.metadata,
    sa.Column(
        "standing_permission_id",
        sa.ForeignKey("standing_permissions.id", name="fk_standing_permission_areas_standing_permission"),
        primary_key=True,
    ),
    sa.Column("area_id", sa.ForeignKey("areas.id"), primary_key=True),
)


class StandingPermission(Model):
    """Granted ahead by an approver: requests it covers are approved at once, without asking each time."""

    __tablename__ = "standing_permissions"
    __table_args__ = (
        sa.CheckConstraint("ends_on >= starts_on", name="dates_in_order"),
        sa.Index("ix_standing_permissions_person_dates", "person_id", "ends_on"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    person_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    personal_device_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("personal_devices.id"))
    starts_on: so.Mapped[date] = so.mapped_column(sa.Date)
    ends_on: so.Mapped[date] = so.mapped_column(sa.Date)
    reason: so.Mapped[str] = so.mapped_column(sa.String(200))
    granted_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    ended_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    ended_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))

    person: so.Mapped[User] = so.relationship(foreign_keys=[person_id], lazy="joined")
    granted_by: so.Mapped[User] = so.relationship(foreign_keys=[granted_by_id], lazy="joined")
    personal_device: so.Mapped[PersonalDevice | None] = so.relationship(lazy="joined")
    # No areas means every area whose rule allows the device.
    areas: so.Mapped[list[Area]] = so.relationship(secondary=standing_permission_areas, lazy="selectin", order_by="Area.name")
