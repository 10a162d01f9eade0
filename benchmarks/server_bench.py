"""Server latency and throughput under gunicorn with 50 clients in flight (DESIGN.md section 9).

The devices list (page and API), registering a device, and the office's check-out of school equipment.

Usage: python -m benchmarks.server_bench [--backend sqlite|postgresql] [--requests 2000]
"""

from __future__ import annotations

from datetime import date, timedelta

from benchmarks.common import (
    Figure,
    backend_cli,
    floor_open_loop,
    measure_on_gunicorn,
    run_load,
    run_open_loop,
    signed_in_session,
    with_floor,
)

CLIENTS = 50
DUE = (date.today() + timedelta(days=7)).isoformat()
SEED_SCRIPT = """
from app import create_app
from app.database import write_intent
from app.extensions import db
from app.models import Role
from app.services import accounts, assets, devices
from tests.factories import make_imei
app = create_app()
with app.app_context(), write_intent():
    office = accounts.create_user(db.session, None, email="office@bench.test", display_name="Office", roles={{Role.OFFICE}}, password="benchmark password")
    for n in range({clients}):
        user = accounts.create_user(db.session, None, email=f"staff{{n}}@bench.test", display_name=f"Staff {{n}}", roles={{Role.OFFICE}} if n == 0 else set(), password="benchmark password")
        for d in range(2):
            devices.register_device(db.session, user, devices.DeviceDetails(kind="smartphone", make="Make", model=f"Model {{d}}", imei1=make_imei(n * 10 + d)))
    for n in range({assets}):
        assets.create_asset(db.session, office, assets.AssetDetails(tag=f"CAM-{{n:05d}}", name=f"Camera {{n}}", kind="camera"))
    db.session.commit()
    print(user.id)
"""


def seed(env: dict, requests: int) -> int:
    """Staff with two phones each, and an asset for every check-out; returns a borrower's id."""
    import subprocess
    import sys

    from benchmarks.common import ROOT

    script = SEED_SCRIPT.format(clients=CLIENTS, assets=requests)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True)  # noqa: S603
    return int(done.stdout.strip().splitlines()[-1])


async def measure_endpoints(base_url: str, requests: int, borrower_id: int) -> list[Figure]:
    clients = [await signed_in_session(base_url, f"staff{n}@bench.test", "benchmark password") for n in range(CLIENTS)]
    office = [await signed_in_session(base_url, "office@bench.test", "benchmark password") for _ in range(CLIENTS)]
    figures: list[Figure] = []
    try:
        cases = {
            "devices page GET": lambda s, csrf, n: s.get("/devices"),
            "devices API GET": lambda s, csrf, n: s.get("/api/v1/devices"),
            "device register POST": lambda s, csrf, n: s.post(
                "/api/v1/devices",
                json={"kind": "camera", "make": "Canon", "model": f"G7 {n}"},
                headers={"X-CSRFToken": csrf},
            ),
        }
        for name, make in cases.items():
            floor = await floor_open_loop(rate=50, seconds=5)
            paced = await run_open_loop(clients, make, rate=50, seconds=10)
            figures += with_floor(paced.figures(f"{name}, open loop 50/s", budget_p95=50.0), floor)
            result = await run_load(clients, make, requests)
            figures += result.figures(f"{name}, 50 in flight (capacity, closed loop)")

        def check_out(session, csrf, n):  # asset ids are 1..requests, each lent once
            return session.post(
                f"/api/v1/assets/{n + 1}/check-out",
                json={"borrower_id": borrower_id, "due_on": DUE},
                headers={"X-CSRFToken": csrf},
            )

        figures += (await run_load(office, check_out, requests)).figures(
            "equipment check-out POST, 50 in flight (capacity, closed loop)"
        )
    finally:
        for session, _csrf in clients + office:
            await session.close()
    return figures


def measure(backend: str = "sqlite", requests: int = 2000) -> list[Figure]:
    return measure_on_gunicorn(
        backend, lambda env: seed(env, requests), lambda base_url, borrower_id: measure_endpoints(base_url, requests, borrower_id)
    )


def main() -> None:
    backend_cli(measure, __doc__, 2000)


if __name__ == "__main__":
    main()
