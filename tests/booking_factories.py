"""Bookable assets, kits and bookings for tests, through the real services."""

from __future__ import annotations

import itertools
from datetime import date

from app.database import write_intent
from app.extensions import db
from app.models import Booking, Kit, SchoolAsset, User
from app.services import bookings
from tests.equipment_factories import make_asset

_numbers = itertools.count(1)


def bookable_asset(office: User, bookable_by: str | None = "everyone", **overrides) -> SchoolAsset:
    asset = make_asset(office, **overrides)
    with write_intent():
        bookings.set_bookable(db.session, office, asset_id=asset.id, bookable_by=bookable_by)
        db.session.commit()
    return asset


def make_kit(office: User, members: int = 3, bookable_by: str | None = "everyone", name: str | None = None) -> Kit:
    n = next(_numbers)
    parts = [make_asset(office, tag=f"KT{n}-{m:03d}", name=f"iPad {m} (kit {n})", kind="tablet") for m in range(members)]
    with write_intent():
        kit = bookings.create_kit(db.session, office, name=name or f"Trolley {n}", tag=f"KIT-{n:04d}", bookable_by=bookable_by)
        for part in parts:
            bookings.add_kit_member(db.session, office, kit.id, part.tag)
        db.session.commit()
    return kit


def make_booking(actor: User, *, day: date, periods=("P3",), **target) -> Booking:
    with write_intent():
        booking = bookings.book(db.session, actor, day=day, periods=periods, **target)
        db.session.commit()
    return booking
