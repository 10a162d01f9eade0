"""Scan to approver notified: from the POST that creates a notice to the encrypted push arriving.

Runs the real app under gunicorn (gunicorn.conf.py: gthread workers) on a fresh SQLite file, a push
sender (by default `flask push-worker` as its own process, as in production; `--worker embedded` uses
the thread inside each web worker instead), and a local push service on 127.0.0.1 that verifies each
message's VAPID signature and decrypts it (tests/push_service.py). CLIENTS people, each signed in on
their own session, keep one request in flight each (50 in flight by default); a request's latency is
from just before its POST to the arrival of its message at every recipient's push endpoint.

The request is a scenario (``--scenario``). Until the permission-request API lands, the default is
``duplicate-imei``: a real endpoint (POST /api/v1/devices with an IMEI already registered) that audits
the attempt and notifies the office on duty, through the same notify() -> outbox -> sender path a
permission request to approvers takes. To measure the permission request itself, add a scenario that
builds its POST (path and JSON per client) and the text that identifies its push: see ``SCENARIOS``.

    .venv/bin/python benchmarks/push_bench.py [--clients 50] [--requests 20] [--recipients 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.push_service import Delivery, PushService  # noqa: E402

CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')
PASSWORD = "correct horse battery"  # noqa: S105 (the benchmark's throwaway people)


@dataclass(frozen=True)
class Scenario:
    """How one client makes a notifying request, and how its push is recognised."""

    name: str
    path: str
    expected_status: int

    def body(self, context: dict, client: int) -> dict:
        raise NotImplementedError

    def marker(self, client: int) -> str:
        """Text at the start of the decrypted message's body that names this client's request."""
        return f"Bench-{client:03d} "


class DuplicateImei(Scenario):
    def body(self, context: dict, client: int) -> dict:
        return {"kind": "smartphone", "make": "Bench", "model": "Phone", "imei1": context["taken_imei"]}


SCENARIOS = {"duplicate-imei": DuplicateImei("duplicate-imei", "/api/v1/devices", 422)}


def prepare_school(database_url: str, instance: Path, clients: int, recipients: int, service: PushService) -> dict:
    """Migrate a fresh database and add the people, a registered phone and the recipients' browsers."""
    from flask_migrate import upgrade
    from stdnum import luhn

    from app import create_app
    from app.database import write_intent
    from app.extensions import db
    from app.models import Role
    from app.services import accounts, devices, push

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_PATH": str(instance), "PUSH_WORKER": False})
    with app.app_context():
        upgrade()
        body = "35" + str(secrets.randbelow(10**12)).zfill(12)
        taken = body + luhn.calc_check_digit(body)
        with write_intent():
            owner = accounts.create_user(db.session, None, email="owner@bench.test", display_name="Phone Owner", roles=set(), password=PASSWORD)
            devices.register_device(db.session, owner, devices.DeviceDetails(kind="smartphone", make="Apple", model="iPhone 13", imei1=taken))
            for n in range(recipients):
                person = accounts.create_user(db.session, None, email=f"office{n}@bench.test", display_name=f"Office {n}", roles={Role.OFFICE, Role.APPROVER}, password=PASSWORD)
                browser = service.new_subscription()
                push.subscribe(db.session, person, endpoint=browser.endpoint, p256dh=browser.p256dh, auth=browser.auth, user_agent="Bench browser", allowed_hosts=("127.0.0.1",))
            for n in range(clients):
                accounts.create_user(db.session, None, email=f"bench{n}@bench.test", display_name=f"Bench-{n:03d}", roles=set(), password=PASSWORD)
            db.session.commit()
        db.engine.dispose()
    return {"taken_imei": taken}


def _csrf(session: requests.Session, url: str) -> str:
    match = CSRF_META.search(session.get(url, timeout=10).text)
    if not match:
        raise RuntimeError(f"no CSRF token on {url}")
    return match.group(1)


def sign_in(base: str, client: int) -> tuple[requests.Session, str]:
    session = requests.Session()
    token = _csrf(session, f"{base}/sign-in")
    response = session.post(f"{base}/sign-in", data={"email": f"bench{client}@bench.test", "password": PASSWORD, "csrf_token": token}, allow_redirects=False, timeout=30)
    if response.status_code != 302:
        raise RuntimeError(f"sign-in failed for client {client}: {response.status_code}")
    return session, _csrf(session, f"{base}/")


def wait_until_up(base: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not come up")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50, help="requests in flight (one per signed-in person)")
    parser.add_argument("--requests", type=int, default=20, help="measured requests per client")
    parser.add_argument("--recipients", type=int, default=2, help="people notified by each request, one browser each")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="duplicate-imei")
    parser.add_argument("--worker", choices=["process", "embedded"], default="process")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    args = parser.parse_args()
    scenario = SCENARIOS[args.scenario]

    work = Path(tempfile.mkdtemp(prefix="lanyard-push-bench-"))
    instance = work / "instance"
    instance.mkdir()
    database_url = f"sqlite:///{work / 'lanyard.db'}"
    contact = "mailto:office@bench.invalid"
    from app.services.push_keys import application_server_key

    service = PushService(expected_sub=contact, expected_key=application_server_key(instance), answer_first=True)
    context = prepare_school(database_url, instance, args.clients, args.recipients, service)

    factory = f"app:create_app({{'INSTANCE_PATH': {str(instance)!r}}})"
    env = {
        **os.environ,
        "LANYARD_DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "LANYARD_SECURE_COOKIES": "0",
        "LANYARD_HSTS": "0",
        "LANYARD_PUSH_CONTACT": contact,
        "LANYARD_PUSH_WORKER": "1" if args.worker == "embedded" else "0",
        "LANYARD_BIND": f"127.0.0.1:{args.port}",
        "LANYARD_PROXY_HOPS": "0",
        "LANYARD_LOGIN_MAX_FAILURES": "1000",
    }
    bin_dir = Path(sys.executable).parent
    processes = []
    logs = []
    try:
        log = (work / "gunicorn.log").open("w")
        logs.append(log)
        processes.append(subprocess.Popen([str(bin_dir / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), factory], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))  # noqa: S603
        if args.worker == "process":
            log = (work / "push-worker.log").open("w")
            logs.append(log)
            processes.append(subprocess.Popen([str(bin_dir / "flask"), "--app", factory, "push-worker"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))  # noqa: S603
        base = f"http://127.0.0.1:{args.port}"
        wait_until_up(base)

        sessions = [sign_in(base, n) for n in range(args.clients)]
        expected = {n: threading.Semaphore(0) for n in range(args.clients)}
        arrivals: dict[int, list[float]] = {n: [] for n in range(args.clients)}
        lock = threading.Lock()

        def on_delivery(delivery: Delivery) -> None:
            match = re.match(r"Bench-(\d{3}) ", delivery.message.get("body", ""))
            if match:
                client = int(match.group(1))
                with lock:
                    arrivals[client].append(delivery.received_at)
                expected[client].release()

        service.on_delivery = on_delivery
        latencies: list[float] = []
        response_times: list[float] = []
        errors: list[str] = []
        start_gate = threading.Barrier(args.clients)

        def run_client(n: int) -> None:
            session, token = sessions[n]
            start_gate.wait()
            for i in range(args.requests + 1):  # the first is a warm-up, not measured
                started = time.monotonic()
                try:
                    response = session.post(f"{base}{scenario.path}", json=scenario.body(context, n), headers={"X-CSRFToken": token}, timeout=30)
                except requests.RequestException as error:
                    errors.append(f"client {n}: {type(error).__name__}")
                    continue
                answered = time.monotonic()
                if response.status_code != scenario.expected_status:
                    errors.append(f"client {n}: HTTP {response.status_code} {response.text[:120]}")
                    continue
                for _ in range(args.recipients):
                    if not expected[n].acquire(timeout=30):
                        errors.append(f"client {n}: a push did not arrive")
                        break
                with lock:
                    last = max(arrivals[n][-args.recipients:])
                if i:
                    latencies.append(last - started)
                    response_times.append(answered - started)

        threads = [threading.Thread(target=run_client, args=(n,)) for n in range(args.clients)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began

        def ms(values: list[float], pct: float) -> str:
            return f"{percentile(values, pct) * 1000:7.1f} ms"

        print(f"scenario {scenario.name}: {args.clients} in flight, {len(latencies)} measured requests, "
              f"{args.recipients} recipients each, sender: {args.worker}, SQLite, gunicorn.conf.py")
        if latencies:
            print(f"  POST to encrypted push arrived  p50 {ms(latencies, 50)}  p95 {ms(latencies, 95)}  p99 {ms(latencies, 99)}  max {max(latencies) * 1000:.1f} ms  mean {statistics.mean(latencies) * 1000:.1f} ms")
            print(f"  POST answered                   p50 {ms(response_times, 50)}  p95 {ms(response_times, 95)}  p99 {ms(response_times, 99)}")
            print(f"  throughput {len(latencies) / elapsed:.0f} requests/s ({len(latencies) * args.recipients / elapsed:.0f} pushes/s)")
        print(f"  errors {len(errors)}; push service refusals (bad VAPID or encryption) {len(service.refusals)}")
        for problem in (errors + service.refusals)[:5]:
            print("   ", problem)
        cpu_self = resource.getrusage(resource.RUSAGE_SELF)
        print(f"  CPU: this benchmark process (clients + push service crypto) {cpu_self.ru_utime + cpu_self.ru_stime:.1f} s over {elapsed:.1f} s on {os.cpu_count()} cores")
        if args.keep:
            print(f"  kept {work}")
        result = {"p50_ms": percentile(latencies, 50) * 1000, "p95_ms": percentile(latencies, 95) * 1000, "p99_ms": percentile(latencies, 99) * 1000} if latencies else {}
        print(json.dumps({"scenario": scenario.name, "worker": args.worker, **result, "errors": len(errors) + len(service.refusals)}))
        return 0 if not errors and not service.refusals else 1
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()
        service.close()
        cpu_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(f"  CPU: gunicorn and the push worker {cpu_children.ru_utime + cpu_children.ru_stime:.1f} s")


if __name__ == "__main__":
    raise SystemExit(main())
