"""The week at a glance (issue 17) with 500 bookable cameras and a week of bookings: CPU per request in
process, with production settings, as a multiple of the floor app's (benchmarks/cpu_bench.py measures the
same way), and the statements per request, which must not grow with the number of assets.

Seeded in bulk (not through the services: the audit chain is not what is measured): 500 bookable cameras,
three bookings each across next week's lesson periods (1,500 bookings), 50 of them out on loan, and a
kit of 30 tablets booked twice.

Usage: python -m benchmarks.booking_week_bench [--backend sqlite|postgresql] [--requests 200] [--profile "one camera"]
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import event

from benchmarks.common import Figure, backend_cli, scratch_database
from benchmarks.cpu_bench import (
    PAGE_BUDGET,
    PASSWORD,
    PROXY,
    Case,
    StatementCounter,
    measure_case,
    migrate,
    production_app,
    sign_in,
)
from benchmarks.floor import create_floor_app, seed_floor

ASSETS = 500
BOOKINGS_PER_ASSET = 3


def _next_monday():
    from app.clock import local_today

    today = local_today()
    return today + timedelta(days=7 - today.weekday())


def seed(app) -> dict:
    """Bulk rows: people, 500 bookable cameras, a kit of 30 tablets, a week of bookings and some loans."""
    from app.clock import school_zone
    from app.database import write_intent
    from app.extensions import db
    from app.models import Booking, BookingItem, Kit, KitMember, Loan, Role, SchoolAsset
    from app.services import accounts
    from app.services.periods import school_periods

    rng = random.Random(17)
    now = datetime.now(UTC)
    with app.app_context(), write_intent():
        office = accounts.create_user(
            db.session, None, email="office@bench.test", display_name="Office", roles={Role.OFFICE}, password=PASSWORD
        )
        staff = [
            accounts.create_user(
                db.session, None, email=f"staff{n}@bench.test", display_name=f"Staff {n}", roles=set(), password=PASSWORD
            )
            for n in range(20)
        ]
        rows = [
            {"tag": f"CAM-{n:04d}", "name": f"Camera {n}", "kind": "camera", "bookable_by": "everyone", "status": "available"}
            for n in range(ASSETS)
        ] + [
            {"tag": f"IPAD-{n:02d}", "name": f"iPad {n}", "kind": "tablet", "bookable_by": None, "status": "available"}
            for n in range(30)
        ]
        for row in rows:
            row.update(
                make="", model="", serial="", home_location="", notes="", recording_capable=True, created_at=now, updated_at=now
            )
        db.session.execute(sa.insert(SchoolAsset), rows)
        ids = dict(db.session.execute(sa.select(SchoolAsset.tag, SchoolAsset.id)).tuples().all())
        cameras = [ids[f"CAM-{n:04d}"] for n in range(ASSETS)]
        kit = Kit(name="iPad trolley", tag="KIT-IPAD", bookable_by="everyone", description="")
        db.session.add(kit)
        db.session.flush()
        db.session.execute(
            sa.insert(KitMember), [{"kit_id": kit.id, "asset_id": ids[f"IPAD-{n:02d}"], "added_at": now} for n in range(30)]
        )
        monday, zone = _next_monday(), school_zone()
        periods = school_periods(db.session)
        slots = [
            (
                datetime.combine(monday + timedelta(days=d), p.starts, tzinfo=zone),
                datetime.combine(monday + timedelta(days=d), p.ends, tzinfo=zone),
                p.label,
            )
            for d in range(5)
            for p in periods
        ]
        bookings, items = [], []
        for asset_id in cameras:
            for starts, ends, label in rng.sample(slots, BOOKINGS_PER_ASSET):
                bookings.append((asset_id, None, starts, ends, label, rng.choice(staff).id))
        for starts, ends, label in rng.sample(slots, 2):
            bookings.append((None, kit.id, starts, ends, label, staff[0].id))
        for asset_id, kit_id, starts, ends, label, person in bookings:
            booking = Booking(
                booked_for_id=person,
                booked_by_id=person,
                asset_id=asset_id,
                kit_id=kit_id,
                starts_at=starts,
                ends_at=ends,
                periods=label,
                purpose="",
            )
            db.session.add(booking)
            db.session.flush()
            members = [asset_id] if asset_id else [ids[f"IPAD-{n:02d}"] for n in range(30)]
            items += [
                {"booking_id": booking.id, "asset_id": m, "starts_at": starts, "ends_at": ends, "active": True} for m in members
            ]
        db.session.execute(sa.insert(BookingItem), items)
        for asset_id in cameras[:50]:
            db.session.add(
                Loan(
                    asset_id=asset_id,
                    borrower_id=staff[1].id,
                    issued_by_id=office.id,
                    out_at=now,
                    due_on=monday + timedelta(days=1),
                )
            )
        db.session.commit()
        return {"week": f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}", "asset": cameras[0], "kit": kit.id}


def _statements(client, engine, path: str) -> int:
    counter = StatementCounter()
    event.listen(engine, "before_cursor_execute", counter)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", counter)
    return counter.count


def measure(backend: str = "sqlite", requests: int = 200, profile: str = "") -> list[Figure]:
    warm = max(10, requests // 10)
    with scratch_database(backend) as (url, instance):
        app = production_app(url, str(instance))
        migrate(app)
        floor = create_floor_app(url)
        floor_client = floor.test_client()
        floor_client.environ_base.update(PROXY)
        floor_client.get(f"/floor/sign-in/{seed_floor(floor)}", base_url="https://floor.test")
        seeded = seed(app)
        staff = sign_in(app, "staff5@bench.test")
        week = seeded["week"]

        def page(marker: str):
            return lambda r: r.status_code == 200 and marker in r.get_data(as_text=True)

        def api(scope: str):
            return lambda r: r.status_code == 200 and r.get_json()["scope"] == scope

        cases = [
            Case(
                f"week view GET, {ASSETS} cameras",
                staff,
                lambda c, n: c.get(f"/bookings/week/kind/camera?week={week}"),
                page("of 500 free"),
                PAGE_BUDGET,
            ),
            Case(
                "week view GET, one camera",
                staff,
                lambda c, n: c.get(f"/bookings/week/asset/{seeded['asset']}?week={week}"),
                page("Camera 0"),
                PAGE_BUDGET,
            ),
            Case(
                "week view GET, kit of 30",
                staff,
                lambda c, n: c.get(f"/bookings/week/kit/{seeded['kit']}?week={week}"),
                page("iPad trolley"),
                PAGE_BUDGET,
            ),
            Case(
                f"availability week API GET, {ASSETS} cameras",
                staff,
                lambda c, n: c.get(f"/api/v1/availability/week?kind=camera&week={week}"),
                api("kind"),
                PAGE_BUDGET,
            ),
        ]
        with app.app_context():
            from app.extensions import db

            engine = db.engine
        with floor.app_context():
            from benchmarks.floor import db as floor_db

            floor_engine = floor_db.engine
        figures: list[Figure] = []
        for case in cases:
            figures += measure_case(
                case, engine, floor_client, floor_engine, warm, requests, profile=bool(profile) and profile in case.name
            )
        one = _statements(staff, engine, f"/bookings/week/asset/{seeded['asset']}?week={week}")
        many = _statements(staff, engine, f"/bookings/week/kind/camera?week={week}")
        figures.append(
            Figure(
                f"week view statements, {ASSETS} cameras minus one camera",
                float(many - one),
                "stmts",
                0.0,
                note=f"{many} statements for {ASSETS} cameras, {one} for one: no query per asset",
            )
        )
        with app.app_context():
            db.engine.dispose()
        with floor.app_context():
            floor_db.engine.dispose()
    for figure in figures:
        figure.name = f"[{backend}] {figure.name}"
    return figures


def main() -> None:
    backend_cli(measure, __doc__ or "", 200, profile=True)


if __name__ == "__main__":
    main()
