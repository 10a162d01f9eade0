"""Benchmark the two hot writes of classroom permission under gunicorn on SQLite (issue 3).

Measures, with 50 clients in flight, the request POST (`POST /api/v1/permission-requests`) and the
decision POST (`POST /api/v1/permission-requests/{id}/decision`): p50/p95/p99 latency and errors.
Budget: p95 under 25 ms, no errors.

    .venv/bin/python benchmarks/permissions.py [--clients 50] [--per-client 10] [--workers N] [--threads N]

It builds a fresh database in a temporary folder, seeds staff, approvers and an area through the real
services, starts gunicorn with the project's gunicorn.conf.py on a free port, signs every client in
through the real sign-in form and prints the figures. Nothing outside the temporary folder is touched.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = secrets.token_urlsafe(12)  # this run only
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(database_url: str, instance: Path, staff_count: int) -> dict:
    """A migrated database with staff (each with a phone), two approvers and one area."""
    from flask_migrate import upgrade

    from app import create_app
    from app.database import write_intent
    from app.extensions import db
    from app.models import Role
    from app.services import accounts, areas, devices
    from tests.factories import make_imei

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_PATH": str(instance), "LANYARD_SCHEDULER": False})
    with app.app_context():
        upgrade()
        with write_intent():
            admin = accounts.create_user(db.session, None, email="admin@bench.test", display_name="Admin", roles={Role.ADMIN}, password=PASSWORD)
            for name in ("head", "deputy"):
                accounts.create_user(db.session, None, email=f"{name}@bench.test", display_name=name.title(), roles={Role.APPROVER}, password=PASSWORD)
            staff = []
            for n in range(staff_count):
                user = accounts.create_user(db.session, None, email=f"staff{n}@bench.test", display_name=f"Staff {n}", roles=set(), password=PASSWORD)
                device = devices.register_device(
                    db.session, user, devices.DeviceDetails(kind="smartphone", make="Apple", model="iPhone 13", imei1=make_imei(10_000 + n))
                )
                staff.append((user.email, device.id))
            area = areas.create_area(db.session, admin, name="Year 3 classroom")
            db.session.commit()
            area_id = area.id
        db.engine.dispose()
    return {"staff": staff, "area_id": area_id}


def signed_in(base: str, email: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    token = CSRF_META.search(session.get(f"{base}/sign-in").text).group(1)
    response = session.post(f"{base}/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": token}, allow_redirects=False)
    if response.status_code != 302:
        raise SystemExit(f"could not sign in {email}: {response.status_code}")
    token = CSRF_META.search(session.get(f"{base}/").text).group(1)
    return session, token


def run_phase(jobs: list[list], worker) -> tuple[list[float], list[str]]:
    """Run each client's job list in its own thread, all released together; return latencies (ms) and errors."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(jobs))

    def client(job_list):
        barrier.wait()
        for job in job_list:
            started = time.perf_counter()
            try:
                ok, detail = worker(job)
            except requests.RequestException as error:
                ok, detail = False, repr(error)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                if not ok:
                    errors.append(detail)

    threads = [threading.Thread(target=client, args=(job_list,)) for job_list in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


def report(name: str, latencies: list[float], errors: list[str], seconds: float) -> None:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(p / 100 * len(ordered))) - 1)]

    print(
        f"{name:10} n={len(ordered):5}  p50={statistics.median(ordered):7.1f} ms  p95={pct(95):7.1f} ms  "
        f"p99={pct(99):7.1f} ms  max={ordered[-1]:7.1f} ms  errors={len(errors)}  {len(ordered) / seconds:6.0f} req/s"
    )
    for detail in sorted(set(errors))[:5]:
        print(f"           error: {detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--per-client", type=int, default=10)
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: gunicorn.conf.py)")
    parser.add_argument("--threads", type=int, default=None, help="threads per worker (default: gunicorn.conf.py)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lanyard-bench-") as folder:
        folder_path = Path(folder)
        instance = folder_path / "instance"
        instance.mkdir()
        database_url = f"sqlite:///{folder_path / 'bench.db'}"
        os.environ.setdefault("SECRET_KEY", "benchmark-" + os.urandom(16).hex())
        data = seed(database_url, instance, args.clients)

        port = free_port()
        env = {
            **os.environ,
            "LANYARD_DATABASE_URL": database_url,
            "LANYARD_BIND": f"127.0.0.1:{port}",
            "LANYARD_SECURE_COOKIES": "0",
            "LANYARD_HSTS": "0",
            "LANYARD_SCHEDULER": "0",
            "LANYARD_PROXY_HOPS": "0",
            "LANYARD_BASE_URL": f"http://127.0.0.1:{port}",
        }
        if args.workers:
            env["LANYARD_WORKERS"] = str(args.workers)
        if args.threads:
            env["LANYARD_THREADS"] = str(args.threads)
        gunicorn = Path(sys.executable).with_name("gunicorn")
        server = subprocess.Popen(  # noqa: S603  (our own gunicorn, fixed arguments)
            [str(gunicorn), "-c", "gunicorn.conf.py", "--access-logfile", "/dev/null", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    if requests.get(f"{base}/healthz", timeout=1).ok:
                        break
                except requests.RequestException:
                    time.sleep(0.1)
            else:
                raise SystemExit("gunicorn did not start")

            staff_clients = [(signed_in(base, email), device_id) for email, device_id in data["staff"]]
            approver_clients = [signed_in(base, ("head", "deputy")[n % 2] + "@bench.test") for n in range(args.clients)]

            created: list[int] = []
            created_lock = threading.Lock()

            def ask(job):
                (session, token), device_id = job
                response = session.post(
                    f"{base}/api/v1/permission-requests",
                    json={"area_id": data["area_id"], "device": f"personal-{device_id}", "reason": "urgent_call", "duration": "one_hour"},
                    headers={"X-CSRFToken": token},
                    timeout=30,
                )
                if response.status_code != 201:
                    return False, f"{response.status_code} {response.text[:120]}"
                with created_lock:
                    created.append(response.json()["id"])
                return True, ""

            started = time.perf_counter()
            asked = run_phase([[client] * args.per_client for client in staff_clients], ask)
            report("request", *asked, time.perf_counter() - started)

            def decide(job):
                (session, token), request_id = job
                response = session.post(
                    f"{base}/api/v1/permission-requests/{request_id}/decision",
                    json={"decision": "approve"},
                    headers={"X-CSRFToken": token},
                    timeout=30,
                )
                return response.status_code == 200, f"{response.status_code} {response.text[:120]}"

            jobs = [[] for _ in approver_clients]
            for n, request_id in enumerate(created):
                jobs[n % len(jobs)].append((approver_clients[n % len(jobs)], request_id))
            started = time.perf_counter()
            decided = run_phase(jobs, decide)
            report("decision", *decided, time.perf_counter() - started)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
