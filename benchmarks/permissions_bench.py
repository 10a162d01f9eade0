"""Classroom permission under gunicorn with 50 clients in flight (issue 3; DESIGN.md section 9).

Measures the request page (`GET /a/<poster token>`, what the door's QR opens), the request POST
(`POST /api/v1/permission-requests`), the decision POST (`POST /api/v1/permission-requests/{id}/decision`)
and the approvals inbox (`GET /approvals`, with a few requests waiting): p50/p95/p99, throughput and
errors, with 50 clients in flight, and the two pages also as 50 people tapping once a second.
The POSTs go in rounds: each of the 50 members of staff asks once (a fresh request, which must answer
201), then the approvers decide everything waiting (200), then the next round; a person may not ask again
for the same phone and room while a request waits, so asking in a loop would measure refusals.

Usage: python -m benchmarks.permissions_bench [--backend sqlite|postgresql] [--requests 1000]
"""

from __future__ import annotations

import subprocess
import sys

from benchmarks.common import (
    ROOT,
    SETUP_TIMEOUT,
    Figure,
    LoadResult,
    analyse,
    backend_cli,
    combined,
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

        async def ask(_session, _csrf, n):
            session, csrf = staff[n]  # request n is staff member n's: one ask each per round
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
            return response

        def request_page(session, _csrf, _n):
            return session.get(f"/a/{poster_token}")

        floor = await floor_open_loop(rate=50, seconds=5)
        paced = await run_open_loop(staff, request_page, rate=50, seconds=8)
        figures += with_floor(paced.figures("request page GET, open loop 50/s", budget_p95=50.0), floor)
        figures += (await run_load(staff, request_page, requests)).figures(
            "request page GET, 50 in flight (capacity, closed loop)"
        )

        # One wait per device: a person may not ask again for the same phone and room while a request
        # waits (app/services/permissions/places.py). So the asks go in rounds, as a school's would: each
        # member of staff asks once, the approvers decide every request of the round, and only then does
        # the same phone ask again. Every ask is a fresh one that must answer 201; anything else is an error.
        asked_rounds: list[LoadResult] = []
        decided_rounds: list[LoadResult] = []
        for _round in range(max(1, requests // CLIENTS)):
            asked_rounds.append(await run_load(staff, ask, CLIENTS, ok_statuses=(201,)))
            # What waits is what the approvers decide: a request the server made although its answer
            # came too late (an error above) is decided too, so the next round's asks are all fresh.
            waiting = await (
                await approvers[0][0].get("/api/v1/permission-requests", params={"scope": "pending"}, timeout=SETUP_TIMEOUT)
            ).json()

            async def decide(session, csrf, n, batch=tuple(item["id"] for item in waiting["items"])):
                return await session.post(
                    f"/api/v1/permission-requests/{batch[n]}/decision",
                    json={"decision": "approve"},
                    headers={"X-CSRFToken": csrf},
                )

            decided_rounds.append(await run_load(approvers, decide, len(waiting["items"]), ok_statuses=(200,)))
        for name, rounds in (("permission request POST", asked_rounds), ("decision POST", decided_rounds)):
            result = combined(rounds)
            measured = result.figures(name)
            if result.errors:  # which answers they were (0: no answer within the timeout)
                measured[-1].note = "statuses " + ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items()))
            figures += measured

        for n in range(5):  # a morning's handful waiting in the inbox
            response = await ask(None, None, n)
            await response.read()
            if response.status != 201:
                raise RuntimeError(f"seeding the inbox: a request answered {response.status}")
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
