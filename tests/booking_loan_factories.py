"""Kits and bookings for the kit-loan, booking-to-loan and week-view tests (rows written directly: the
booking rules themselves are tested with app/services/bookings.py)."""

from __future__ import annotations

from datetime import datetime

from app.database import write_intent
from app.extensions import db
from app.models import Booking, BookingItem, Kit, KitMember, SchoolAsset, User
from tests.equipment_factories import make_asset


def make_kit(
    office: User,
    size: int = 30,
    *,
    name: str = "iPad trolley",
    tag: str = "KIT-IPAD",
    prefix: str = "IPAD",
    bookable_by: str | None = "everyone",
) -> tuple[Kit, list[SchoolAsset]]:
    members = [make_asset(office, tag=f"{prefix}-{n:02d}", name=f"iPad {n}", kind="tablet") for n in range(1, size + 1)]
    with write_intent():
        kit = Kit(name=name, tag=tag, bookable_by=bookable_by)
        db.session.add(kit)
        db.session.flush()
        db.session.add_all(KitMember(kit_id=kit.id, asset_id=asset.id) for asset in members)
        db.session.commit()
    return kit, members


def make_booking(
    person: User,
    starts: datetime,
    ends: datetime,
    *,
    asset: SchoolAsset | None = None,
    kit: Kit | None = None,
    periods: str | None = "P3",
    purpose: str = "",
) -> Booking:
    with write_intent():
        booking = Booking(
            booked_for_id=person.id,
            booked_by_id=person.id,
            asset_id=asset.id if asset else None,
            kit_id=kit.id if kit else None,
            starts_at=starts,
            ends_at=ends,
            periods=periods,
            purpose=purpose,
        )
        db.session.add(booking)
        db.session.flush()
        ids = [asset.id] if asset else [m.asset_id for m in db.session.get(Kit, kit.id).members]
        db.session.add_all(BookingItem(booking_id=booking.id, asset_id=i, starts_at=starts, ends_at=ends) for i in ids)
        db.session.commit()
        return booking


def make_bookable(asset: SchoolAsset, bookable_by: str = "everyone") -> SchoolAsset:
    with write_intent():
        row = db.session.get(SchoolAsset, asset.id)
        row.bookable_by = bookable_by
        db.session.commit()
    return row
