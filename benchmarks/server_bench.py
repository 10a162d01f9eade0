"""Server latency and throughput under gunicorn with 50 clients in flight (DESIGN.md section 9).

Usage: python -m benchmarks.server_bench [--backend sqlite|postgresql] [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio

from benchmarks.common import (
    Figure,
    environment,
    flask,
    gunicorn,
    print_table,
    run_load,
    run_paced,
    scratch_database,
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
    with scratch_database(backend) as (url, instance):
        env = environment(url, instance)
        flask(env, "db", "upgrade", "heads")
        seed(env)
        with gunicorn(env) as base_url:
            figures = asyncio.run(measure_endpoints(base_url, requests))
    for figure in figures:
        figure.name = f"[{backend}] {figure.name}"
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--requests", type=int, default=2000)
    arguments = parser.parse_args()
    print_table(measure(arguments.backend, arguments.requests))


if __name__ == "__main__":
    main()
