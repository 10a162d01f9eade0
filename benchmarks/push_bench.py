"""Scan to approver notified: from the POST that creates a notice to its encrypted push arriving.

The real app runs under gunicorn (gunicorn.conf.py) on a scratch SQLite database, with a push sender:
by default `flask push-worker` as its own process, as in production (`--worker embedded` uses the
thread inside each web worker instead). A local push service on 127.0.0.1 (tests/push_service.py)
stands in for FCM/Mozilla: it verifies every message's VAPID signature and decrypts it with the
recipient's browser keys. CLIENTS people, each signed in on their own session, keep one request in
flight each (50 by default); a request's latency runs from just before its POST to the arrival of its
message at every recipient's endpoint.

The request is a scenario (``--scenario``). The default, ``permission-request``, is the scan at the
classroom door: POST /api/v1/permission-requests, which notifies the approvers on duty, whose pushes
carry one-time Approve/Deny tokens (urgency high). Once its push has arrived, each requester withdraws
the request (not timed), so that the same phone's next request is a fresh one and not refused as a
second wait. ``duplicate-imei`` (POST /api/v1/devices with an IMEI already in the register, which
notifies the office) takes the same notify() -> outbox -> sender path without the tokens. Another
request is another ``Scenario``: how to POST it, and how to tell which client's request a decrypted
push belongs to.

    .venv/bin/python -m benchmarks.push_bench [--clients 50] [--requests 1000] [--recipients 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import subprocess
import time
from dataclasses import dataclass

import aiohttp

from benchmarks.common import (
    PYTHON,
    ROOT,
    Figure,
    LoadResult,
    environment,
    flask,
    gunicorn,
    print_table,
    scratch_database,
    signed_in_session,
)
from tests.push_service import Delivery, PushService

PASSWORD = "benchmark password"  # noqa: S105 (the benchmark's throwaway people)
CONTACT = "mailto:office@bench.invalid"


@dataclass(frozen=True)
class Scenario:
    """One client's notifying request, and how its push is recognised among the others."""

    name: str
    expected_status: int

    def request(self, session: aiohttp.ClientSession, csrf: str, context: dict):
        raise NotImplementedError

    async def settle(self, session: aiohttp.ClientSession, csrf: str, body: bytes) -> bool:
        """After its push arrived (not timed): make the next request a fresh one. False if that failed."""
        return True

    def client_of(self, delivery: Delivery) -> int | None:
        """Which client's request a decrypted push belongs to (the body names the person)."""
        match = re.match(r"Bench-(\d{3}) ", delivery.message.get("body", ""))
        return int(match.group(1)) if match else None


class DuplicateImei(Scenario):
    def request(self, session, csrf, context):
        body = {"kind": "smartphone", "make": "Bench", "model": "Phone", "imei1": context["taken_imei"]}
        return session.post("/api/v1/devices", json=body, headers={"X-CSRFToken": csrf})


class PermissionRequest(Scenario):
    def request(self, session, csrf, context):
        client = context["client_of_session"][id(session)]
        body = {
            "area_id": context["area_id"],
            "device": context["devices"][client],
            "reason": "urgent_call",
            "duration": "one_hour",
        }
        return session.post("/api/v1/permission-requests", json=body, headers={"X-CSRFToken": csrf})

    async def settle(self, session, csrf, body):
        # One wait per person, device and room (app/services/permissions/places.py): the same phone may
        # ask again only once its request is settled, so the requester withdraws it, as someone who no
        # longer needs it would. Every measured request is a fresh one that must answer 201.
        # With no answer (a timeout), the server may still have made it: withdraw whatever of theirs waits.
        if body:
            waiting = [json.loads(body)["id"]]
        else:
            mine = await (await session.get("/api/v1/permission-requests", params={"scope": "mine"})).json()
            waiting = [item["id"] for item in mine["items"] if item["status"] == "pending"]
        for request_id in waiting:
            response = await session.post(f"/api/v1/permission-requests/{request_id}/withdraw", headers={"X-CSRFToken": csrf})
            await response.read()
            if response.status != 200:
                return False
        return True

    def client_of(self, delivery: Delivery) -> int | None:
        match = re.match(r"Bench-(\d{3}): ", delivery.message.get("title", ""))
        return int(match.group(1)) if match and delivery.message.get("actions") else None


SCENARIOS = {
    "permission-request": PermissionRequest("permission-request", 201),
    "duplicate-imei": DuplicateImei("duplicate-imei", 422),
}


def seed(database_url: str, instance, clients: int, recipients: int, service: PushService) -> dict:
    """The people, a phone already in the register, and one subscribed browser per recipient."""
    from stdnum import luhn

    from app import create_app
    from app.database import write_intent
    from app.extensions import db
    from app.models import Role
    from app.services import accounts, areas, devices, push

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_PATH": str(instance), "PUSH_WORKER": False})
    with app.app_context(), write_intent():
        body = "35" + str(secrets.randbelow(10**12)).zfill(12)
        taken = body + luhn.calc_check_digit(body)
        owner = accounts.create_user(
            db.session, None, email="owner@bench.test", display_name="Phone Owner", roles=set(), password=PASSWORD
        )
        devices.register_device(
            db.session, owner, devices.DeviceDetails(kind="smartphone", make="Apple", model="iPhone 13", imei1=taken)
        )
        for n in range(recipients):
            person = accounts.create_user(
                db.session,
                None,
                email=f"office{n}@bench.test",
                display_name=f"Office {n}",
                roles={Role.OFFICE, Role.APPROVER},
                password=PASSWORD,
            )
            browser = service.new_subscription()
            push.subscribe(
                db.session,
                person,
                endpoint=browser.endpoint,
                p256dh=browser.p256dh,
                auth=browser.auth,
                user_agent="Bench browser",
                services=push.PushServices.from_config({"PUSH_EXTRA_HOSTS": service.host}),
            )
        admin = accounts.create_user(
            db.session, None, email="admin@bench.test", display_name="Admin", roles={Role.ADMIN}, password=PASSWORD
        )
        area_id = areas.create_area(db.session, admin, name="Year 3", rule="ask").id
        phones = []
        for n in range(clients):
            person = accounts.create_user(
                db.session, None, email=f"bench{n}@bench.test", display_name=f"Bench-{n:03d}", roles=set(), password=PASSWORD
            )
            body = "35" + str(secrets.randbelow(10**12)).zfill(12)
            phone = devices.register_device(
                db.session,
                person,
                devices.DeviceDetails(
                    kind="smartphone", make="Bench", model=f"Phone {n}", imei1=body + luhn.calc_check_digit(body)
                ),
            )
            phones.append(f"personal-{phone.id}")
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return {"taken_imei": taken, "area_id": area_id, "devices": phones}


async def settled(scenario: Scenario, session: aiohttp.ClientSession, csrf: str, body: bytes) -> bool:
    try:
        return await scenario.settle(session, csrf, body)
    except (aiohttp.ClientError, TimeoutError):
        return False


async def measure_notified(
    base_url: str, service: PushService, scenario: Scenario, context: dict, *, clients: int, total: int, recipients: int
) -> tuple[LoadResult, LoadResult]:
    loop = asyncio.get_running_loop()
    arrivals = {n: asyncio.Queue() for n in range(clients)}

    def on_delivery(delivery: Delivery) -> None:
        client = scenario.client_of(delivery)
        if client is not None:
            loop.call_soon_threadsafe(arrivals[client].put_nowait, delivery.received_at)

    service.on_delivery = on_delivery
    sessions = [await signed_in_session(base_url, f"bench{n}@bench.test", PASSWORD) for n in range(clients)]
    context = {**context, "client_of_session": {id(session): n for n, (session, _csrf) in enumerate(sessions)}}
    notified, answered = LoadResult(), LoadResult()
    counter = iter(range(total + clients))  # one warm-up request per client, not measured

    async def client(n: int) -> None:
        session, csrf = sessions[n]
        warm = True
        for _ in counter:
            started = time.monotonic()
            body = b""
            try:
                response = await scenario.request(session, csrf, context)
                body = await response.read()
                status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            replied = time.monotonic()
            notified.statuses[status] = notified.statuses.get(status, 0) + 1
            if status != scenario.expected_status:
                notified.errors += 1
                if status == 0 and not await settled(scenario, session, csrf, b""):
                    return
                continue
            try:
                times = [await asyncio.wait_for(arrivals[n].get(), 30) for _ in range(recipients)]
            except TimeoutError:
                notified.errors += 1
                notified.statuses[-1] = notified.statuses.get(-1, 0) + 1  # answered, but no push within 30 s
                times = []
            if times and not warm:
                notified.latencies_ms.append((max(times) - started) * 1000)
                answered.latencies_ms.append((replied - started) * 1000)
            warm = False
            if not await settled(scenario, session, csrf, body):
                notified.errors += 1
                notified.statuses[-2] = notified.statuses.get(-2, 0) + 1  # could not settle it: the next would be refused
                return

    began = time.monotonic()
    try:
        await asyncio.gather(*(client(n) for n in range(clients)))
    finally:
        for session, _csrf in sessions:
            await session.close()
    notified.seconds = answered.seconds = time.monotonic() - began
    return notified, answered


def measure(
    clients: int = 50, requests: int = 1000, recipients: int = 2, worker: str = "process", scenario: str = "permission-request"
) -> list[Figure]:
    chosen = SCENARIOS[scenario]
    with scratch_database("sqlite") as (url, instance):
        from app.services.push_keys import application_server_key

        service = PushService(expected_sub=CONTACT, expected_key=application_server_key(instance), answer_first=True)
        env = environment(
            url,
            instance,
            LANYARD_PUSH_CONTACT=CONTACT,
            LANYARD_PUSH_EXTRA_HOSTS=service.host,
            LANYARD_PUSH_WORKER="1" if worker == "embedded" else "0",
            LANYARD_LOGIN_MAX_FAILURES="1000",
        )
        sender = None
        try:
            flask(env, "db", "upgrade")
            context = seed(url, instance, clients, recipients, service)
            if worker == "process":
                sender = subprocess.Popen(
                    [PYTHON, "-m", "flask", "push-worker"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )  # noqa: S603
            with gunicorn(env) as base_url:
                notified, answered = asyncio.run(
                    measure_notified(base_url, service, chosen, context, clients=clients, total=requests, recipients=recipients)
                )
        finally:
            if sender is not None:
                sender.terminate()
                sender.wait(10)
            service.close()
    label = f"[sqlite, {clients} in flight, sender: {worker}] {chosen.name}"
    figures = notified.figures(f"{label} POST to push arrived", budget_p95=100.0)
    figures += [f for f in answered.figures(f"{label} POST answered", budget_p95=None) if f.unit == "ms"]
    figures.append(Figure(f"{label} push service refusals (VAPID/encryption)", len(service.refusals), "count", 0))
    if notified.errors:
        figures[4].note = "statuses " + ", ".join(
            f"{ {-1: 'no push', -2: 'not withdrawn'}.get(k, k) }: {v}" for k, v in sorted(notified.statuses.items())
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50, help="requests in flight (one signed-in person each)")
    parser.add_argument("--requests", type=int, default=1000, help="measured requests in all")
    parser.add_argument("--recipients", type=int, default=2, help="people notified by each request, one browser each")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="permission-request")
    parser.add_argument("--worker", choices=["process", "embedded"], default="process")
    arguments = parser.parse_args()
    print_table(measure(arguments.clients, arguments.requests, arguments.recipients, arguments.worker, arguments.scenario))


if __name__ == "__main__":
    main()
