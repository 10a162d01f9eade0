"""Demo equipment: ten assets of different kinds, two on loan, one of them overdue."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy.orm import Session

from app import clock
from app.demo import demo_imei, demo_seeder
from app.models import SchoolAsset
from app.services import assets, loans

DEMO_ASSETS = (
    ("CAM-001", "Canon camera (Year 3)", "camera", "Canon", "EOS 250D", "", "Year 3"),
    ("CAM-002", "Canon camera (Year 5)", "camera", "Canon", "EOS 250D", "", "Year 5"),
    ("IPAD-001", "iPad 1 (trolley)", "tablet", "Apple", "iPad 10th gen", "", "iPad trolley"),
    ("IPAD-002", "iPad 2 (trolley)", "tablet", "Apple", "iPad 10th gen", "", "iPad trolley"),
    ("IPAD-003", "iPad 3 (trolley)", "tablet", "Apple", "iPad 10th gen", "", "iPad trolley"),
    ("MOB-001", "Trips mobile", "work_mobile", "Samsung", "Galaxy A15", "trips", "Office"),
    ("MOB-002", "Site manager's mobile", "work_mobile", "Nokia", "G22", "site", "Office"),
    ("LAP-001", "SENCo laptop", "laptop", "Dell", "Latitude 3540", "", "Office"),
    ("LAP-002", "Supply teacher laptop", "laptop", "Lenovo", "ThinkPad E14", "", "Office"),
    ("REC-001", "Voice recorder (music)", "voice_recorder", "Sony", "ICD-UX570", "", "Music room"),
)


@contextmanager
def _days_ago(days: int) -> Iterator[None]:
    """Run demo steps as if some days ago, through the same services (and audit events) as real use."""
    real_now = clock.utcnow()
    previous_source = clock._source
    clock.set_source(lambda: real_now - timedelta(days=days))
    try:
        yield
    finally:
        clock.set_source(previous_source)


@demo_seeder(30)
def seed_equipment(session: Session, people) -> None:
    office = people["office"]
    made: dict[str, SchoolAsset] = {}
    with _days_ago(30):
        _add_assets(session, office, made)
    with _days_ago(10):
        loans.check_out(
            session,
            office,
            made["IPAD-002"].id,
            borrower_id=people["cdavies"].id,
            due_on=clock.local_today() + timedelta(days=7),
            purpose="Reading assessment videos",
            condition="Good",
            accepted_in_person=True,
        )
    today = clock.local_today()
    loans.check_out(
        session,
        office,
        made["CAM-001"].id,
        borrower_id=people["bclarke"].id,
        due_on=today + timedelta(days=3),
        purpose="Year 3 science photos",
        condition="Good; charger and strap included",
    )  # the terms wait for Mr B Clarke to accept them on his phone


def _add_assets(session: Session, office, made: dict) -> None:
    for tag, name, kind, make, model, imei_seed, location in DEMO_ASSETS:
        made[tag] = assets.create_asset(
            session,
            office,
            assets.AssetDetails(
                tag=tag,
                name=name,
                kind=kind,
                make=make,
                model=model,
                imei=demo_imei(imei_seed + tag) if imei_seed else "",
                home_location=location,
                recording_capable=kind != "laptop",
            ),
            via="demo",
        )
