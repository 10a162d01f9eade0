"""A person's equipment bookings in their "My data" download."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.services.bookings import booking_json, my_bookings
from app.services.personal_data import register_section


@register_section
def bookings_section(session: Session, user) -> tuple[str, object]:
    return "bookings", [booking_json(booking) for booking in my_bookings(session, user, upcoming_only=False, limit=100_000)]
