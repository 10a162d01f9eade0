"""CPU per request, in process, with production settings: the headline figures (DESIGN.md section 9).

Each endpoint is called through Flask's test client on a migrated scratch database, built exactly as
production builds it (LANYARD_ENV=production, secure cookies, HSTS, JSON logs, behind one proxy hop with
X-Forwarded-For/-Proto), and timed with ``time.process_time`` (CPU of this process only: the database
server's work on PostgreSQL is not in it, the SQLite library's is). Every response is checked: a wrong
status, a redirect to the sign-in page or a page without its heading stops the run.

The floor app (benchmarks/floor) is measured in the same run, interleaved batch by batch with each
endpoint, and every figure is printed with its ratio to the floor. Statements are counted per request
with an SQLAlchemy ``before_cursor_execute`` listener.

Usage: python -m benchmarks.cpu_bench [--backend sqlite|postgresql] [--requests 200] [--profile "request POST"]
       [--only "request page,inbox"]

``--profile`` names the cases (a substring of each name) whose last round runs under cProfile, printing
where their CPU goes (own time and cumulative), to find what to make cheaper.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import event

from benchmarks.common import Figure, scratch_database
from benchmarks.floor import create_floor_app, seed_floor

PASSWORD = "benchmark password"  # noqa: S105  (a throwaway database, removed after the run)
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')
PROXY = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7", "HTTP_X_FORWARDED_PROTO": "https"}
ROUNDS = 5
# Budgets: CPU per request as a multiple of the floor's (pages 3x, writes 4x).
PAGE_BUDGET, WRITE_BUDGET = 3.0, 4.0


@dataclass
class Case:
    name: str
    client: object
    call: Callable[[object, int], object]  # (client, n) -> response; n counts from 0 across the whole run
    check: Callable[[object], bool]
    budget: float


class StatementCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_args) -> None:
        self.count += 1


def production_app(database_url: str, instance: str):
    """Lanyard as gunicorn builds it in production (no environment variable says development)."""
    for key in [k for k in os.environ if k.startswith("LANYARD_")]:
        del os.environ[key]
    os.environ.update({"LANYARD_PROXY_HOPS": "1", "LANYARD_SCHEDULER": "0", "LANYARD_PUSH_WORKER": "0"})
    from app import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url.replace("postgresql://", "postgresql+psycopg://", 1),
            "INSTANCE_PATH": instance,
            "SECRET_KEY": "benchmark-" + os.urandom(8).hex(),
            "BASE_URL": "https://lanyard.test",
        }
    )


def migrate(app) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade(revision="head")


def sign_in(app, email: str):
    client = app.test_client()
    client.environ_base.update(PROXY)
    page = client.get("/sign-in").get_data(as_text=True)
    token = CSRF_META.search(page).group(1)
    answer = client.post("/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": token})
    if answer.status_code != 302 or "/sign-in" in answer.headers.get("Location", ""):
        raise RuntimeError(f"sign-in for {email} answered {answer.status_code}")
    page = client.get("/devices").get_data(as_text=True)
    client.csrf = CSRF_META.search(page).group(1)  # type: ignore[attr-defined]
    return client


def seed(app, requesters: int, approvers: int, assets: int) -> dict:
    from app.database import write_intent
    from app.extensions import db
    from app.models import Role
    from app.services import accounts, areas, devices
    from app.services import assets as asset_service
    from tests.factories import make_imei

    with app.app_context(), write_intent():
        admin = accounts.create_user(
            db.session, None, email="admin@bench.test", display_name="Admin", roles={Role.ADMIN}, password=PASSWORD
        )
        office = accounts.create_user(
            db.session, None, email="office@bench.test", display_name="Office", roles={Role.OFFICE}, password=PASSWORD
        )
        for n in range(approvers):
            accounts.create_user(
                db.session,
                None,
                email=f"approver{n}@bench.test",
                display_name=f"Approver {n}",
                roles={Role.APPROVER},
                password=PASSWORD,
            )
        phones = []
        for n in range(requesters):
            user = accounts.create_user(
                db.session, None, email=f"staff{n}@bench.test", display_name=f"Staff {n}", roles=set(), password=PASSWORD
            )
            phones.append(
                devices.register_device(
                    db.session,
                    user,
                    devices.DeviceDetails(kind="smartphone", make="Apple", model="iPhone 13", imei1=make_imei(n)),
                )
            )
        area = areas.create_area(db.session, admin, name="Year 3 classroom")
        asset_ids = [
            asset_service.create_asset(
                db.session, office, asset_service.AssetDetails(tag=f"CAM-{n:05d}", name=f"Camera {n}", kind="camera")
            ).id
            for n in range(assets)
        ]
        db.session.commit()
        return {
            "area": area.id,
            "poster": area.poster_token,
            "phones": [p.id for p in phones],
            "borrower": user.id,
            "assets": asset_ids,
        }


def measure(backend: str = "sqlite", requests: int = 200, profile: str = "", only: str = "") -> list[Figure]:
    warm = max(10, requests // 10)
    total = warm + requests
    with scratch_database(backend) as (url, instance):
        app = production_app(url, str(instance))
        migrate(app)
        floor = create_floor_app(url)
        floor_client = floor.test_client()
        floor_client.environ_base.update(PROXY)
        floor_client.get(f"/floor/sign-in/{seed_floor(floor)}", base_url="https://floor.test")
        # Five waiting in the inbox come first, then one request POST per measured call, each decided once.
        seeded = seed(app, requesters=total + 5, approvers=3, assets=total)
        staff = [sign_in(app, f"staff{n}@bench.test") for n in range(total + 5)]
        approver = sign_in(app, "approver0@bench.test")
        office = sign_in(app, "office@bench.test")
        created: list[int] = []
        due = (date.today() + timedelta(days=7)).isoformat()

        def ask(n: int):
            client = staff[n]
            body = {
                "area_id": seeded["area"],
                "device": f"personal-{seeded['phones'][n]}",
                "reason": "urgent_call",
                "duration": "one_hour",
            }
            answer = client.post("/api/v1/permission-requests", json=body, headers={"X-CSRFToken": client.csrf})
            if answer.status_code == 201:
                created.append(answer.get_json()["id"])
            return answer

        for n in range(5):  # a morning's handful waiting in the inbox
            ask(total + n)
        waiting = list(created)
        created.clear()

        def page(marker: str) -> Callable[[object], bool]:
            return lambda r: r.status_code == 200 and marker in r.get_data(as_text=True)

        cases = [
            Case(
                "request page GET /a/<token>",
                staff[0],
                lambda c, n: c.get(f"/a/{seeded['poster']}"),
                page("Year 3 classroom"),
                PAGE_BUDGET,
            ),
            Case("approvals inbox GET (5 waiting)", approver, lambda c, n: c.get("/approvals"), page("Staff "), PAGE_BUDGET),
            Case("my devices GET", staff[0], lambda c, n: c.get("/devices"), page("iPhone 13"), PAGE_BUDGET),
            Case(
                "devices API GET",
                staff[0],
                lambda c, n: c.get("/api/v1/devices"),
                lambda r: r.status_code == 200 and r.get_json()["items"],
                PAGE_BUDGET,
            ),
            Case("request POST", None, lambda c, n: ask(n), lambda r: r.status_code == 201, WRITE_BUDGET),
            Case(
                "decision POST",
                approver,
                lambda c, n: c.post(
                    f"/api/v1/permission-requests/{created[n]}/decision",
                    json={"decision": "approve"},
                    headers={"X-CSRFToken": c.csrf},
                ),
                lambda r: r.status_code == 200,
                WRITE_BUDGET,
            ),
            Case(
                "check-out POST",
                office,
                lambda c, n: c.post(
                    f"/api/v1/assets/{seeded['assets'][n]}/check-out",
                    json={"borrower_id": seeded["borrower"], "due_on": due},
                    headers={"X-CSRFToken": c.csrf},
                ),
                lambda r: r.status_code in (200, 201),
                WRITE_BUDGET,
            ),
        ]
        del waiting
        figures: list[Figure] = []
        with app.app_context():
            from app.extensions import db

            engine = db.engine
        with floor.app_context():
            from benchmarks.floor import db as floor_db

            floor_engine = floor_db.engine
        for case in cases:
            if only and not any(part.strip() in case.name for part in only.split(",")):
                continue
            figures += measure_case(
                case, engine, floor_client, floor_engine, warm, requests, profile=bool(profile) and profile in case.name
            )
        with app.app_context():
            db.engine.dispose()
        with floor.app_context():
            floor_db.engine.dispose()
    for figure in figures:
        figure.name = f"[{backend}] {figure.name}"
    return figures


def _timed(call: Callable[[int], object], check: Callable[[object], bool], numbers: range, name: str) -> float:
    """CPU seconds for the calls numbered `numbers`, every answer checked (a wrong one stops the run)."""
    answers = []
    started = time.process_time()
    for n in numbers:
        answers.append(call(n))
    spent = time.process_time() - started
    for answer in answers:
        if not check(answer):
            location = answer.headers.get("Location", "")
            raise RuntimeError(f"{name}: unexpected answer {answer.status_code} {location} {answer.get_data(as_text=True)[:300]}")
    return spent


def _profiler():
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def _print_profile(profiler, name: str, calls: int) -> None:
    import pstats

    profiler.disable()
    print(f"\n== profile: {name}, {calls} calls ==")
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(50)


def measure_case(
    case: Case, engine, floor_client, floor_engine, warm: int, requests: int, *, profile: bool = False
) -> list[Figure]:
    """The case's median CPU per request over ROUNDS rounds, each beside a round of the floor.

    With ``profile``, the last round runs under cProfile and its statistics are printed (that round is
    slower; the median of the five hardly moves).
    """
    floor_call = lambda n: floor_client.get("/floor", base_url="https://floor.test")  # noqa: E731
    floor_check = lambda r: r.status_code == 200 and "Floor Person" in r.get_data(as_text=True)  # noqa: E731
    call = lambda n: case.call(case.client, n)  # noqa: E731
    _timed(floor_call, floor_check, range(warm), "floor")
    _timed(call, case.check, range(warm), case.name)
    per_round = requests // ROUNDS
    lanyard_ms: list[float] = []
    floor_ms: list[float] = []
    counter, floor_counter = StatementCounter(), StatementCounter()
    event.listen(engine, "before_cursor_execute", counter)
    event.listen(floor_engine, "before_cursor_execute", floor_counter)
    try:
        for r in range(ROUNDS):  # interleaved: floor, endpoint, floor, endpoint ...
            floor_ms.append(_timed(floor_call, floor_check, range(per_round), "floor") * 1000 / per_round)
            start = warm + r * per_round
            profiler = _profiler() if profile and r == ROUNDS - 1 else None
            lanyard_ms.append(_timed(call, case.check, range(start, start + per_round), case.name) * 1000 / per_round)
            if profiler is not None:
                _print_profile(profiler, case.name, per_round)
    finally:
        event.remove(engine, "before_cursor_execute", counter)
        event.remove(floor_engine, "before_cursor_execute", floor_counter)
    ms, floor = statistics.median(lanyard_ms), statistics.median(floor_ms)
    ratio = ms / floor
    statements = counter.count / (per_round * ROUNDS)
    return [
        Figure(
            f"CPU {case.name}",
            ratio,
            "x floor",
            case.budget,
            note=f"{ms:.2f} ms vs floor {floor:.2f} ms; {statements:.1f} statements/request (floor {floor_counter.count / (per_round * ROUNDS):.1f})",
        )
    ]


def main() -> None:
    import argparse

    from benchmarks.common import print_table

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--profile", default="", help="profile the cases whose name holds this text")
    parser.add_argument("--only", default="", help="measure only the cases whose name holds one of these (comma-separated)")
    arguments = parser.parse_args()
    print_table(measure(arguments.backend, arguments.requests, arguments.profile, arguments.only))


if __name__ == "__main__":
    main()
