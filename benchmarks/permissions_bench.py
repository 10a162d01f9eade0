"""Classroom permission under gunicorn with 50 clients in flight (issue 3; DESIGN.md section 9).

Measures the request page (`GET /a/<poster token>`, what the door's QR opens), the request POST
(`POST /api/v1/permission-requests`), the decision POST (`POST /api/v1/permission-requests/{id}/decision`)
and the approvals inbox (`GET /approvals`, with a few requests waiting): p50/p95/p99, throughput and
errors, with 50 clients in flight, and the two pages also as 50 people tapping once a second.

Usage: python -m benchmarks.permissions_bench [--backend sqlite|postgresql] [--requests 1000]
"""

from __future__ import annotations

import subprocess
import sys

from benchmarks.common import (
    ROOT,
    Figure,
    analyse,
    backend_cli,
    floor_open_loop,
    measure_on_gunicorn,
    run_load,
    run_open_loop,
    signed_in_session,
    with_floor,
)

CLIENTS = 50
PASSWORD = "benchmark password"  # noqa: S105  (a throwaway database, removed after the run)
SEED_SCRIPT = """
from app import create_app
from app.database import write_intent
from app.extensions import db
from app.models import Role
from app.services import accounts, areas, devices
from tests.factories import make_imei
app = create_app()
with app.app_context(), write_intent():
    admin = accounts.create_user(db.session, None, email="admin@bench.test", display_name="Admin", roles={{Role.ADMIN}}, password={password!r})
    for n in range({clients}):
        accounts.create_user(db.session, None, email=f"approver{{n}}@bench.test", display_name=f"Approver {{n}}", roles={{Role.APPROVER}}, password={password!r})
        user = accounts.create_user(db.session, None, email=f"staff{{n}}@bench.test", display_name=f"Staff {{n}}", roles=set(), password={password!r})
        devices.register_device(db.session, user, devices.DeviceDetails(kind="smartphone", make="Apple", model="iPhone 13", imei1=make_imei(n)))
    area = areas.create_area(db.session, admin, name="Year 3 classroom")
    db.session.commit()
    print(area.id, area.poster_token)
"""


def seed(env: dict) -> tuple[int, str, str]:
    """Staff with a phone each, approvers, one area; returns the area's id, its poster token and the database."""
    script = SEED_SCRIPT.format(clients=CLIENTS, password=PASSWORD)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True)  # noqa: S603
    area_id, token = done.stdout.strip().splitlines()[-1].split()
    return int(area_id), token, env["LANYARD_DATABASE_URL"]


async def measure_endpoints(base_url: str, area: tuple[int, str, str], requests: int) -> list[Figure]:
    area_id, poster_token, database_url = area
    staff = [await signed_in_session(base_url, f"staff{n}@bench.test", PASSWORD) for n in range(CLIENTS)]
    approvers = [await signed_in_session(base_url, f"approver{n}@bench.test", PASSWORD) for n in range(CLIENTS)]
    figures: list[Figure] = []
    try:
        device_of: dict[int, int] = {}  # each member of staff's one phone
        for session, _csrf in staff:
            listing = await (await session.get("/api/v1/devices")).json()
            device_of[id(session)] = listing["items"][0]["id"]
        created: list[int] = []

        async def ask(session, csrf, _n):
            response = await session.post(
                "/api/v1/permission-requests",
                json={
                    "area_id": area_id,
                    "device": f"personal-{device_of[id(session)]}",
                    "reason": "urgent_call",
                    "duration": "one_hour",
                },
                headers={"X-CSRFToken": csrf},
            )
            if response.status == 201:
                created.append((await response.json())["id"])
            return response

        def request_page(session, _csrf, _n):
            return session.get(f"/a/{poster_token}")

        floor = await floor_open_loop(rate=50, seconds=5)
        paced = await run_open_loop(staff, request_page, rate=50, seconds=8)
        figures += with_floor(paced.figures("request page GET, open loop 50/s", budget_p95=50.0), floor)
        figures += (await run_load(staff, request_page, requests)).figures(
            "request page GET, 50 in flight (capacity, closed loop)"
        )

        asked = await run_load(staff, ask, requests)
        figures += asked.figures("permission request POST")

        async def decide(session, csrf, n):
            return await session.post(
                f"/api/v1/permission-requests/{created[n]}/decision", json={"decision": "approve"}, headers={"X-CSRFToken": csrf}
            )

        decided = await run_load(approvers, decide, len(created))
        figures += decided.figures("decision POST")

        for session, csrf in staff[:5]:  # a morning's handful waiting in the inbox
            await (await ask(session, csrf, 0)).read()
        analyse(database_url)  # thousands of requests and notices were just written

        def inbox(session, _csrf, _n):
            return session.get("/approvals")

        floor = await floor_open_loop(rate=50, seconds=5)
        paced = await run_open_loop(approvers, inbox, rate=50, seconds=8)
        figures += with_floor(paced.figures("approvals inbox GET (5 waiting), open loop 50/s", budget_p95=50.0), floor)
        figures += (await run_load(approvers, inbox, requests)).figures(
            "approvals inbox GET (5 waiting), 50 in flight (capacity, closed loop)"
        )
    finally:
        for session, _csrf in staff + approvers:
            await session.close()
    return figures


def measure(backend: str = "sqlite", requests: int = 1000) -> list[Figure]:
    return measure_on_gunicorn(backend, seed, lambda base_url, area: measure_endpoints(base_url, area, requests))


def main() -> None:
    backend_cli(measure, __doc__, 1000)


if __name__ == "__main__":
    main()
