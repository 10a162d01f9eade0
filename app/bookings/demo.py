"""Demo bookings: an iPad trolley kit (30 iPads and its charger), a class camera and a visualiser that all
staff may book, and a week of bookings by the demo staff, made through the real services."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.orm import Session

from app import clock
from app.demo import demo_seeder
from app.models import BookableBy
from app.services import assets, bookings

TROLLEY_IPADS = ("IPAD-001", "IPAD-003", *(f"IPAD-{n:03d}" for n in range(4, 32)))  # IPAD-002 is lent on its own
# Who books what on the next school days: (day index, person, thing, periods, purpose).
WEEK = (
    (0, "bclarke", "trolley", ("P3", "P4"), "Year 3 maths: times tables app"),
    (0, "cdavies", "camera", ("P1",), "Year 5 science: plant growth photos"),
    (1, "eevans", "visualiser", ("P2",), "Handwriting modelling"),
    (1, "cdavies", "trolley", ("P5", "P6"), "Year 5 computing"),
    (2, "bclarke", "camera", ("P5",), "Year 3 PE assessment photos"),
    (3, "eevans", "trolley", ("P1", "P2"), "Reading assessments"),
    (3, "bclarke", "visualiser", ("P3",), "Science demonstration"),
    (4, "cdavies", "camera", ("P3", "P4"), "Class assembly rehearsal"),
)


def _next_school_days(count: int) -> list[date]:
    days: list[date] = []
    current = clock.local_today() + timedelta(days=1)
    while len(days) < count:
        if current.weekday() < 5:
            days.append(current)
        current += timedelta(days=1)
    return days


def _asset(session: Session, office, tag: str, name: str, kind: str, location: str, *, bookable: str | None = None):
    asset = assets.find_by_tag(session, tag)
    if asset is None:
        asset = assets.create_asset(
            session,
            office,
            assets.AssetDetails(tag=tag, name=name, kind=kind, make="", model="", home_location=location),
            via="demo",
        )
    if bookable:
        bookings.set_bookable(session, office, asset_id=asset.id, bookable_by=bookable)
    return asset


@demo_seeder(40)
def seed_bookings(session: Session, people) -> None:
    office = people["office"]
    for tag in TROLLEY_IPADS:
        _asset(session, office, tag, f"iPad {int(tag.removeprefix('IPAD-'))} (trolley)", "tablet", "iPad trolley")
    _asset(session, office, "CHG-001", "iPad trolley charger", "other", "iPad trolley")
    trolley = bookings.create_kit(
        session,
        office,
        name="iPad trolley",
        tag="KIT-TROLLEY-1",
        description="30 iPads and the trolley's charging unit. Kept in the library.",
        bookable_by=BookableBy.EVERYONE.value,
    )
    for tag in (*TROLLEY_IPADS, "CHG-001"):
        bookings.add_kit_member(session, office, trolley.id, tag)
    everyone = BookableBy.EVERYONE.value
    camera = _asset(session, office, "CAM-010", "Class camera", "camera", "Staffroom", bookable=everyone)
    visualiser = _asset(session, office, "VIS-001", "Visualiser", "other", "Staffroom", bookable=everyone)
    things = {"trolley": {"kit_id": trolley.id}, "camera": {"asset_id": camera.id}, "visualiser": {"asset_id": visualiser.id}}
    days = _next_school_days(5)
    for index, person, thing, periods, purpose in WEEK:
        bookings.book(session, people[person], day=days[index], periods=periods, purpose=purpose, **things[thing])
