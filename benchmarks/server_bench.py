"""Server latency and throughput under gunicorn with 50 clients in flight (DESIGN.md section 9).

Usage: python -m benchmarks.server_bench [--backend sqlite|postgresql] [--requests 2000]
"""

from __future__ import annotations

from benchmarks.common import (
    Figure,
    backend_cli,
    measure_on_gunicorn,
    run_load,
    run_paced,
    signed_in_session,
)

CLIENTS = 50
SEED_SCRIPT = """
from app import create_app
from app.database import write_intent
from app.extensions import db
from app.models import Role
from app.services import accounts, devices
from tests.factories import make_imei
app = create_app()
with app.app_context(), write_intent():
    for n in range({clients}):
        user = accounts.create_user(db.session, None, email=f"staff{{n}}@bench.test", display_name=f"Staff {{n}}", roles={{Role.OFFICE}} if n == 0 else set(), password="benchmark password")
        for d in range(2):
            devices.register_device(db.session, user, devices.DeviceDetails(kind="smartphone", make="Make", model=f"Model {{d}}", imei1=make_imei(n * 10 + d)))
    db.session.commit()
"""


def seed(env: dict) -> None:
    import subprocess
    import sys

    from benchmarks.common import ROOT

    subprocess.run([sys.executable, "-c", SEED_SCRIPT.format(clients=CLIENTS)], cwd=ROOT, env=env, check=True)


async def measure_endpoints(base_url: str, requests: int) -> list[Figure]:
    clients = [await signed_in_session(base_url, f"staff{n}@bench.test", "benchmark password") for n in range(CLIENTS)]
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
            paced = await run_paced(clients, make, seconds=10)
            figures += paced.figures(f"{name}, 50 people tapping each second")
            result = await run_load(clients, make, requests)
            figures += result.figures(f"{name}, 50 in flight")
    finally:
        for session, _csrf in clients:
            await session.close()
    return figures


def measure(backend: str = "sqlite", requests: int = 2000) -> list[Figure]:
    return measure_on_gunicorn(backend, seed, lambda base_url, _seeded: measure_endpoints(base_url, requests))


def main() -> None:
    backend_cli(measure, __doc__, 2000)


if __name__ == "__main__":
    main()
