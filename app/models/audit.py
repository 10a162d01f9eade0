"""The append-only, hash-chained audit log (DESIGN.md section 6)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.database import UTCDateTime
from app.extensions import Model


class AuditEvent(Model):
    __tablename__ = "audit_events"
    __table_args__ = (
        sa.Index("ix_audit_events_actor_seq", "actor_id", "seq"),
        sa.Index("ix_audit_events_subject", "subject_type", "subject_id"),
        sa.Index("ix_audit_events_action_seq", "action", "seq"),
        # Date ranges are read as a band of seqs from this index alone (services/audit_log.py).
        sa.Index("ix_audit_events_occurred_at_seq", "occurred_at", "seq"),
    )

    # The chain position: assigned under the append lock, so a second writer can never reuse it.
    seq: so.Mapped[int] = so.mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    occurred_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    actor_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    action: so.Mapped[str] = so.mapped_column(sa.String(60))
    subject_type: so.Mapped[str] = so.mapped_column(sa.String(40), default="")
    subject_id: so.Mapped[str] = so.mapped_column(sa.String(40), default="")
    details: so.Mapped[str] = so.mapped_column(sa.Text, default="{}")
    ip: so.Mapped[str] = so.mapped_column(sa.String(64), default="")
    user_agent: so.Mapped[str] = so.mapped_column(sa.String(255), default="")
    prev_hash: so.Mapped[str] = so.mapped_column(sa.String(64))
    hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)

    actor = so.relationship("User", lazy="joined")


class AuditLink(Model):
    """What an event is about besides its subject (the person, device, asset or area), for fast filters.

    Written with the event and append-only like it; not part of the hash (it is an index, and verify
    checks each link against its event's own details where they overlap).
    """

    __tablename__ = "audit_links"
    __table_args__ = (sa.Index("ix_audit_links_kind_ref_seq", "kind", "ref", "seq"),)

    # No foreign key: the links are an index over the events, which stay the evidence.
    seq: so.Mapped[int] = so.mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(20), primary_key=True)
    ref: so.Mapped[str] = so.mapped_column(sa.String(40), primary_key=True)


class AuditVerification(Model):
    """The result of each chain verification, shown on the audit page without re-walking a million rows."""

    __tablename__ = "audit_verifications"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    checked_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    verified_count: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    last_seq: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
    last_hash: so.Mapped[str] = so.mapped_column(sa.String(64))
    broken_at_seq: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
    problem: so.Mapped[str] = so.mapped_column(sa.String(200), default="")


class AuditCheckpoint(Model):
    """Where retention cut the oldest events: the chain now starts after ``up_to_seq`` from ``hash``.

    A row alone proves nothing (anyone with database access can insert one): it counts only when the
    chain vouches for it, through the ``audit.checkpoint`` event at ``event_seq`` whose details record
    the same ``up_to_seq`` and ``hash``. The database lets events be deleted only below such a vouched
    checkpoint, and refuses any change to the checkpoints themselves. Rows made before checkpoints were
    chained (migration 0011) have no ``event_seq`` and are reported as not vouched for.
    """

    __tablename__ = "audit_checkpoints"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    up_to_seq: so.Mapped[int] = so.mapped_column(sa.BigInteger, unique=True)
    hash: so.Mapped[str] = so.mapped_column(sa.String(64))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    events_removed: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)
    # The audit.checkpoint event that vouches for this row (appended before the cut, so it survives it).
    event_seq: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
