"""Demo areas and a standing permission for the demo school."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from app.clock import local_today
from app.demo import demo_seeder
from app.models import AreaRule
from app.services import areas, permissions
from app.services.devices import devices_of


@demo_seeder(30)
def seed_permissions(session: Session, people) -> None:
    """Four areas (one of each rule and the hall), delegates, and a standing permission for Miss C Davies."""
    admin, head = people["admin"], people["head"]
    year3 = areas.create_area(session, admin, name="Year 3 classroom", rule=AreaRule.ASK.value)
    areas.create_area(session, admin, name="Hall", rule=AreaRule.ASK.value)
    areas.create_area(session, admin, name="EYFS unit", rule=AreaRule.SCHOOL_DEVICES_ONLY.value)
    areas.create_area(session, admin, name="Changing area (swimming)", rule=AreaRule.CLOSED.value)
    permissions.set_delegates(session, admin, [people["deputy"].id])
    phone = devices_of(session, people["cdavies"])[0]
    today = local_today()
    permissions.grant_standing_permission(
        session,
        head,
        person_id=people["cdavies"].id,
        personal_device_id=phone.id,
        area_ids=[year3.id],
        starts_on=today,
        ends_on=today + timedelta(days=90),
        reason="Medical need: her glucose monitor app runs on this phone.",
    )
