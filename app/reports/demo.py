"""Demo history for the reports: several months of permission requests (decided, withdrawn, an emergency
override reviewed late), loans returned on time and late, a stock-take with an asset missing, and a phone
reported lost and found again (the policy's acceptances are spread over the weeks by its own seeder).

Each step runs through the real services with the clock moved back, so the audit log tells the same story.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import clock
from app.demo import backdated, demo_seeder
from app.models import Area, SchoolAsset, StaffType
from app.services import devices, loans, permissions, stocktakes
from app.services.staff_terms import set_staff_terms

# (days ago, requester, area, decision): spread over the last five months.
REQUESTS = (
    (150, "bclarke", "Year 3 classroom", "approve"),
    (143, "eevans", "Hall", "approve"),
    (121, "bclarke", "Hall", "deny"),
    (115, "eevans", "Year 3 classroom", "approve"),
    (94, "bclarke", "Year 3 classroom", "approve"),
    (88, "eevans", "Hall", "withdraw"),
    (80, "bclarke", "Hall", "emergency"),
    (61, "eevans", "Year 3 classroom", "approve"),
    (55, "bclarke", "Year 3 classroom", "deny"),
    (40, "eevans", "Hall", "approve"),
    (33, "bclarke", "Hall", "approve"),
    (26, "eevans", "Year 3 classroom", "emergency"),
    (12, "bclarke", "Year 3 classroom", "approve"),
    (5, "eevans", "Hall", "approve"),
)


def _at_ten(days: int) -> float:
    """``days`` ago at about 10:00 in the school (a lesson, not the middle of the night)."""
    now = clock.to_local(clock.utcnow())
    return days + (now.hour - 10) / 24


@demo_seeder(70)
def seed_report_history(session: Session, people) -> None:
    areas = {a.name: a for a in session.scalars(sa.select(Area))}
    head = people["head"]
    for days, who, area_name, decision in REQUESTS:
        person = people[who]
        phone = devices.devices_of(session, person)[0]
        with backdated(_at_ten(days)):
            asked = permissions.request_permission(
                session,
                person,
                areas[area_name],
                device_key=f"personal-{phone.id}",
                reason="urgent_call" if decision != "emergency" else "medical",
                duration="one_hour",
                emergency=decision == "emergency",
                emergency_reason="A parent rang: a family emergency, I must be reachable." if decision == "emergency" else "",
            )
            if decision in ("approve", "deny"):
                permissions.decide(
                    session, head, asked.id, decision, note="" if decision == "approve" else "Use the office phone."
                )
            elif decision == "withdraw":
                permissions.withdraw(session, person, asked.id)
            elif decision == "emergency":
                permissions.end_permission(session, person, asked.id)
        if decision == "emergency":
            # The first override was reviewed the next morning, the second only after three days.
            with backdated(_at_ten(days) - (0.9 if days > 50 else 3)):
                permissions.review_emergency(session, head, asked.id, "justified", note="Checked with the family.")
    _loan_history(session, people)
    # Staff of more than one type, so the policy report's table by staff type has rows to compare.
    set_staff_terms(session, people["admin"], people["eevans"], staff_type=StaffType.SUPPLY, end_date=None)
    set_staff_terms(session, people["admin"], people["cdavies"], staff_type=StaffType.VOLUNTEER, end_date=None)


def _loan_history(session: Session, people) -> None:
    office = people["office"]
    kit = {a.tag: a for a in session.scalars(sa.select(SchoolAsset))}
    for days_out, tag, who, keep_days, due_days in (
        (130, "CAM-002", "bclarke", 3, 5),
        (100, "LAP-002", "eevans", 9, 5),  # returned four days late
        (70, "REC-001", "cdavies", 2, 2),
        (45, "IPAD-003", "bclarke", 12, 7),  # returned late
        (20, "MOB-001", "eevans", 1, 1),
    ):
        with backdated(_at_ten(days_out)):
            loans.check_out(
                session,
                office,
                kit[tag].id,
                borrower_id=people[who].id,
                due_on=clock.local_today() + timedelta(days=due_days),
                purpose="Demo loan",
                condition="Good",
                accepted_in_person=True,
            )
        with backdated(_at_ten(days_out - keep_days) - 0.25):
            loans.check_in(session, office, kit[tag].id, condition="Good")
    with backdated(_at_ten(60)):
        take = stocktakes.start_stocktake(session, office, location="Office")
        for tag in ("MOB-001", "MOB-002", "LAP-002"):
            stocktakes.record_scan(session, office, take.id, tag)
        stocktakes.close_stocktake(session, office, take.id)  # LAP-001 (the SENCo laptop) is missing
    phone = devices.devices_of(session, people["eevans"])[0]
    with backdated(_at_ten(75)):
        devices.report_lost(session, people["eevans"], phone, stolen=False, notes="Left on the school trip coach.")
    with backdated(_at_ten(73)):
        devices.mark_found(session, people["eevans"], phone)
