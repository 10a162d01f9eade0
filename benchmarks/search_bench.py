"""Large-trust search (issue 13, item 5): the office's device register search and the admin's staff search.

Seeds 20,000 devices (each with an IMEI) belonging to 5,000 staff into a scratch database, then times the
service calls the pages make (`devices.search_register`, `accounts.search_people`) in-process: a warm-up
pass over every search first, then `runs` rounds, each search's p50/p95 printed with nearest-rank
percentiles. Budget: p95 under 20 ms on SQLite and on PostgreSQL. Beside the wall clock, which other work
on the machine inflates, each search's CPU time in this process (on SQLite, the database's work too) and,
on PostgreSQL, the server's own planning and execution time (EXPLAIN ANALYZE) are printed.

    .venv/bin/python -m benchmarks.search_bench [--backend sqlite|postgresql] [--staff 5000] [--devices 20000] [--runs 100]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from flask_migrate import upgrade
from stdnum import luhn

from app import create_app
from app.database import write_intent
from app.extensions import db
from app.models import PersonalDevice, RegisteredImei, User, UserRole
from app.services import accounts, devices
from benchmarks.common import Figure, print_table, scratch_database

SURNAMES = ["Adeyemi", "Brennan", "Clarke", "Davies", "Evans", "Fraser", "Gill", "Hughes", "Iqbal", "Jones"]
SURNAMES += ["Khan", "Lewis", "Morgan", "Nowak", "Okafor", "Patel", "Quinn", "Roberts", "Singh", "Taylor"]
MAKES = ["Apple", "Samsung", "Google", "Motorola"]
BUDGET_MS = 20.0


def nearest_rank(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def seed(staff: int, device_count: int) -> str:
    """Bulk-load the people, devices and IMEIs (the search indexes keep up through their triggers)."""
    now = datetime.now(UTC)
    titles = ["Mr", "Ms", "Miss"]
    people = [
        {
            "email": f"staff{n}@bench.test",
            "display_name": f"{titles[n % 3]} {chr(65 + n % 26)} {SURNAMES[n % 20]} {n}",
            "is_active_account": n % 50 != 0,
            "created_at": now,
        }
        for n in range(staff)
    ]
    db.session.execute(sa.insert(User), people)
    ids = list(db.session.scalars(sa.select(User.id).order_by(User.id)))
    db.session.execute(sa.insert(UserRole), [{"user_id": i, "role": "staff"} for i in ids])
    rows = [
        {
            "owner_id": ids[n % len(ids)],
            "kind": "smartphone" if n % 4 else "tablet",
            "make": MAKES[n % 4],
            "model": f"Model {n % 31}",
            "description": "",
            "serial": f"SN{n:07d}" if n % 3 == 0 else "",
            "status": "active" if n % 40 else "lost",
            "crime_reference": "",
            "loss_notes": "",
            "created_at": now,
            "updated_at": now,
        }
        for n in range(device_count)
    ]
    for start in range(0, len(rows), 5000):
        db.session.execute(sa.insert(PersonalDevice), rows[start : start + 5000])
    device_ids = list(db.session.scalars(sa.select(PersonalDevice.id).order_by(PersonalDevice.id)))
    imeis = []
    for n, device_id in enumerate(device_ids):
        body = f"35{n:012d}"
        imeis.append({"imei": body + luhn.calc_check_digit(body), "device_id": device_id, "slot": 1})
    for start in range(0, len(imeis), 5000):
        db.session.execute(sa.insert(RegisteredImei), imeis[start : start + 5000])
    db.session.commit()
    return imeis[len(imeis) // 2]["imei"]


def searches(imei: str) -> dict[str, Callable[[], int]]:
    """Each search a name and a call returning how many it found."""
    session = db.session

    def register(text: str) -> Callable[[], int]:
        return lambda: len(devices.search_register(session, text))

    def staff(text: str) -> Callable[[], int]:
        return lambda: len(accounts.search_people(session, text))

    return {
        "device search, surname prefix 'okaf'": register("okaf"),
        "device search, part of a name 'Okafor 1'": register("Okafor 1"),
        "device search, make 'samsung'": register("samsung"),
        "device search, model 'model 17'": register("model 17"),
        "device search, rare text 'zzqx'": register("zzqx"),
        "device search, last 4 IMEI digits": register(imei[-4:]),
        "device search, last 6 IMEI digits": register(imei[-6:]),
        "device search, full IMEI": register(imei),
        "staff search 'Patel'": staff("Patel"),
        "staff search 'pat'": staff("pat"),
        "staff search, email 'staff1234@'": staff("staff1234@"),
        "staff search, rare text 'zzqx'": staff("zzqx"),
    }


def statements_of(call: Callable[[], int]) -> list[tuple[str, object]]:
    """The SQL one search sends, with its parameters."""
    sent: list[tuple[str, object]] = []

    def note(_conn, _cursor, statement, parameters, _context, _many) -> None:
        sent.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        call()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)
        db.session.rollback()
    return [(statement, parameters) for statement, parameters in sent if statement.lstrip().upper().startswith("SELECT")]


def database_ms(statements: list[tuple[str, object]]) -> float:
    """PostgreSQL's own planning and execution time for the statements (EXPLAIN ANALYZE), in ms."""
    total = 0.0
    connection = db.session.connection()
    for statement, parameters in statements:
        plan = connection.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters).scalar_one()[0]
        total += plan["Planning Time"] + plan["Execution Time"]
    db.session.rollback()
    return total


def collect(backend: str, staff: int, device_count: int, runs: int) -> dict[str, dict[str, list[float]]]:
    """Each search's samples in ms: wall clock; CPU (this thread's: on SQLite all the work, on PostgreSQL
    the client's share); on PostgreSQL the server's own time (EXPLAIN ANALYZE)."""
    with scratch_database(backend) as (scratch_url, instance):
        url = scratch_url.replace("postgresql://", "postgresql+psycopg://")
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(instance), "SECRET_KEY": "bench", "TESTING": True})
        with app.app_context():
            upgrade(revision="head")
            started = time.perf_counter()
            with write_intent():
                imei = seed(staff, device_count)
            load = os.getloadavg()[0]
            print(
                f"[{backend}] seeded {staff:,} staff and {device_count:,} devices in {time.perf_counter() - started:.1f} s"
                f" (load average {load:.1f} on {os.cpu_count()} cores: other work on the machine slows every figure)"
            )
            if backend == "postgresql":
                db.session.execute(sa.text("ANALYZE"))
                db.session.commit()
            cases = searches(imei)
            for call in cases.values():  # warm-up: plans, caches and the connection pool
                call()
                db.session.rollback()
            samples: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": [], "database": []} for name in cases}
            for _ in range(runs):
                for name, call in cases.items():
                    began, began_cpu = time.perf_counter(), time.thread_time()
                    found = call()
                    samples[name]["wall"].append((time.perf_counter() - began) * 1000)
                    samples[name]["cpu"].append((time.thread_time() - began_cpu) * 1000)
                    db.session.rollback()
                    assert found >= 0
            if backend == "postgresql":
                for name, call in cases.items():
                    statements = statements_of(call)
                    samples[name]["database"] = [database_ms(statements) for _ in range(max(5, runs // 5))]
            db.session.remove()
            db.engine.dispose()
    return samples


def measure(backend: str = "sqlite", staff: int = 5000, devices: int = 20000, runs: int = 100) -> list[Figure]:
    figures = []
    for name, found in collect(backend, staff, devices, runs).items():
        prefix = f"[{backend}, {staff:,} staff, {devices:,} devices] {name}"
        figures += [
            Figure(f"{prefix} p50", nearest_rank(found["wall"], 50), "ms"),
            Figure(f"{prefix} p95", nearest_rank(found["wall"], 95), "ms", BUDGET_MS),
            Figure(f"{prefix} CPU p95", nearest_rank(found["cpu"], 95), "ms"),
        ]
        if found["database"]:
            figures.append(Figure(f"{prefix} PostgreSQL's own time p95", nearest_rank(found["database"], 95), "ms"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--staff", type=int, default=5000)
    parser.add_argument("--devices", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=100)
    arguments = parser.parse_args()
    print_table(measure(arguments.backend, arguments.staff, arguments.devices, arguments.runs))


if __name__ == "__main__":
    main()
