"""A large trust's school (DESIGN.md section 9, scale): 5,000 staff, 20,000 devices, 50,000 assets.

Generates the data in bulk, runs ANALYZE after the load as a restore would (``measure_on_gunicorn``),
serves it with gunicorn (the production settings) and measures the pages whose cost grows with it: the
office's device register (list and IMEI search), the admin's staff search, a member of staff's own
devices, and the equipment list and search. Each is measured as an open loop of 50 requests a second
(sent on schedule, latency from the scheduled time) against DESIGN.md section 9's 50 ms p95 budget.
An open loop past the server's capacity queues without end: a p50 of seconds with timeouts means the
page costs more CPU than 50 a second leaves, not that one request takes seconds.

Usage: python -m benchmarks.trust_scale [--backend sqlite|postgresql] [--staff 5000] [--devices 20000] [--assets 50000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from benchmarks.common import ROOT, SETUP_TIMEOUT, Figure, measure_on_gunicorn, print_table, run_open_loop, signed_in_session

PASSWORD = "benchmark password"  # noqa: S105  (a throwaway database, removed after the run)
CLIENTS = 50
GENERATE = r"""
import json, random, sys
from datetime import UTC, datetime
import sqlalchemy as sa
from stdnum import luhn
from app import create_app
from app.database import write_intent
from app.extensions import db
from app.models import AssetSearchTerm, PersonalDevice, RegisteredImei, Role, SchoolAsset, User, UserRole
from app.services import accounts, assets

staff, device_count, asset_count = (int(value) for value in sys.argv[1:4])
rng = random.Random(11)
now = datetime.now(UTC)
app = create_app()
SURNAMES = ["Adeyemi", "Brennan", "Clarke", "Davies", "Evans", "Fraser", "Gill", "Hughes", "Iqbal", "Jones", "Khan", "Lewis", "Morgan", "Nowak", "Okafor", "Patel", "Quinn", "Roberts", "Singh", "Taylor"]
with app.app_context():
    with write_intent():
        # A few real accounts (their password hashed once) to sign in with; the rest in bulk.
        office = accounts.create_user(db.session, None, email="office@bench.test", display_name="Ms O Office", roles={Role.OFFICE}, password=sys.argv[4])
        admin = accounts.create_user(db.session, None, email="admin@bench.test", display_name="Mr A Admin", roles={Role.ADMIN}, password=sys.argv[4])
        password_hash = office.password_hash
        people = [{"email": f"staff{n}@bench.test", "display_name": f"{'MrMsMiss'[n % 3 * 2:n % 3 * 2 + 2]} {chr(65 + n % 26)} {SURNAMES[n % 20]} {n}",
                   "password_hash": password_hash, "is_active_account": n % 50 != 0, "created_at": now} for n in range(staff)]
        db.session.execute(sa.insert(User), people)
        ids = list(db.session.scalars(sa.select(User.id).where(User.email.like("staff%@bench.test")).order_by(User.id)))
        db.session.execute(sa.insert(UserRole), [{"user_id": i, "role": "staff"} for i in ids])
        devices, imeis = [], []
        for n in range(device_count):
            devices.append({"owner_id": ids[n % len(ids)], "kind": "smartphone" if n % 4 else "tablet", "make": ["Apple", "Samsung", "Google", "Motorola"][n % 4],
                            "model": f"Model {n % 31}", "description": "", "serial": "", "status": "active" if n % 40 else "lost",
                            "crime_reference": "", "loss_notes": "", "created_at": now, "updated_at": now})
        for start in range(0, len(devices), 5000):
            db.session.execute(sa.insert(PersonalDevice), devices[start:start + 5000])
        device_ids = list(db.session.scalars(sa.select(PersonalDevice.id).order_by(PersonalDevice.id)))
        for n, device_id in enumerate(device_ids):
            body = f"35{n:012d}"
            imeis.append({"imei": body + luhn.calc_check_digit(body), "device_id": device_id, "slot": 1})
        for start in range(0, len(imeis), 5000):
            db.session.execute(sa.insert(RegisteredImei), imeis[start:start + 5000])
        rows = []
        kinds = ("camera", "tablet", "work_mobile", "laptop", "voice_recorder", "other")
        for n in range(asset_count):
            kind = kinds[n % len(kinds)]
            rows.append({"tag": f"{kind[:3].upper()}-{n:05d}", "name": f"{kind.replace('_', ' ').title()} {n}", "kind": kind, "make": "Make",
                         "model": f"M{n % 37}", "serial": f"SN{n:09d}", "recording_capable": True, "status": "available",
                         "home_location": f"Room {n * 100 // asset_count:03d}", "notes": "", "created_at": now, "updated_at": now})
        for start in range(0, len(rows), 5000):
            db.session.execute(sa.insert(SchoolAsset), rows[start:start + 5000])
        asset_ids = list(db.session.scalars(sa.select(SchoolAsset.id).order_by(SchoolAsset.id)))
        terms = [{"asset_id": asset_id, "term": term} for asset_id, row in zip(asset_ids, rows)
                 for term in assets.terms_for(row["tag"], row["name"], row["make"], row["model"], row["serial"], row["home_location"])]
        for start in range(0, len(terms), 20000):
            db.session.execute(sa.insert(AssetSearchTerm), terms[start:start + 20000])
        db.session.commit()
    print(json.dumps({"imei": imeis[len(imeis) // 2]["imei"], "staff_email": f"staff{staff // 3}@bench.test"}))
"""


def seeder(staff: int, devices: int, asset_count: int):
    def seed(env: dict) -> dict:
        output = subprocess.run(
            [sys.executable, "-c", GENERATE, str(staff), str(devices), str(asset_count), PASSWORD],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(output.strip().splitlines()[-1])

    return seed


async def measure_pages(base_url: str, seeded: dict, seconds: float) -> list[Figure]:
    office = [await signed_in_session(base_url, "office@bench.test", PASSWORD) for _ in range(CLIENTS)]
    admin = [await signed_in_session(base_url, "admin@bench.test", PASSWORD) for _ in range(CLIENTS)]
    person = [await signed_in_session(base_url, seeded["staff_email"], PASSWORD) for _ in range(CLIENTS)]
    imei = seeded["imei"]
    cases = {
        "office device register, first page": (office, lambda s, csrf, n: s.get("/office/devices")),
        "office device search by last 6 IMEI digits": (
            office,
            lambda s, csrf, n: s.get("/office/devices", params={"q": imei[-6:]}),
        ),
        "office device search by name": (office, lambda s, csrf, n: s.get("/office/devices", params={"q": "Okafor 1"})),
        "admin staff search": (admin, lambda s, csrf, n: s.get("/admin/staff", params={"q": "Patel"})),
        "my devices (one of 5,000 staff)": (person, lambda s, csrf, n: s.get("/devices")),
        "equipment list, first page": (office, lambda s, csrf, n: s.get("/equipment")),
        "equipment search": (office, lambda s, csrf, n: s.get("/equipment", params={"q": "camera 4"})),
    }
    figures: list[Figure] = []
    try:
        for name, (clients, make) in cases.items():
            # A request whose client gave up (a timeout) is still in the server's queue: let the queue drain
            # before the next case, or one overloaded page's backlog is charged to the page after it.
            await (await clients[0][0].get("/devices", timeout=SETUP_TIMEOUT)).read()
            result = await run_open_loop(clients, make, rate=50, seconds=seconds)
            figures += [
                figure for figure in result.figures(f"{name}, open loop 50/s", budget_p95=50.0) if "p99" not in figure.name
            ]
    finally:
        for session, _csrf in office + admin + person:
            await session.close()
    return figures


def measure(
    backend: str = "sqlite", staff: int = 5000, devices: int = 20000, asset_count: int = 50000, seconds: float = 8.0
) -> list[Figure]:
    figures = measure_on_gunicorn(
        backend, seeder(staff, devices, asset_count), lambda base_url, seeded: measure_pages(base_url, seeded, seconds)
    )
    for figure in figures:
        figure.note = f"{staff:,} staff, {devices:,} devices, {asset_count:,} assets"
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--staff", type=int, default=5000)
    parser.add_argument("--devices", type=int, default=20000)
    parser.add_argument("--assets", type=int, default=50000)
    parser.add_argument("--seconds", type=float, default=8.0)
    arguments = parser.parse_args()
    print_table(measure(arguments.backend, arguments.staff, arguments.devices, arguments.assets, arguments.seconds))


if __name__ == "__main__":
    main()
