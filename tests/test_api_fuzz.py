"""Schemathesis against the running app's OpenAPI description, all checks, one fuzz user per role.

The app is served by a real WSGI server on 127.0.0.1 and fuzzed with the schemathesis command line;
whatever it finds is a bug to fix, not to exclude. Five people (staff, approver, office, admin,
governor) each fuzz with their own API token, and the school is seeded so that every operation can
succeed for the right person (tests/fuzz_hooks.py): the run must reach a 2xx on every operation, and
a schema-valid request may be refused only by a school rule listed by name in fuzz_hooks.BUSINESS_RULES.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from app.clock import local_today
from app.database import write_intent
from app.extensions import db
from app.models import PersonalDevice, Role, SchoolAsset
from app.services import action_tokens, api_tokens, devices, permissions, push
from tests.booking_factories import bookable_asset, make_booking, make_kit
from tests.browser.conftest import LiveServer
from tests.equipment_factories import lend, make_asset
from tests.factories import make_device, make_imei, make_user
from tests.fuzz_hooks import BUSINESS_RULES, ROLES, matching_rule
from tests.permission_factories import ask, committed, make_area
from tests.push.test_push_endpoints import browser_keys

pytestmark = pytest.mark.sqlite_only

ROOT = Path(__file__).resolve().parent.parent
SEEDED = 6  # objects per consumable operation: a few successes each, then the listed rules answer


def _token(person, name: str) -> str:
    with write_intent():
        _token, secret = api_tokens.create_token(db.session, person, name)
        db.session.commit()
    return secret


def _seed_school() -> dict:
    """People with one role each, and for every operation the objects its rightful user may act on."""
    people = {role: make_user(Role(role), name=f"Fuzz {role.title()}") for role in ROLES}
    staff, approver, office, admin = people["staff"], people["approver"], people["office"], people["admin"]
    other_approver = make_user(Role.APPROVER, name="Fuzz Second Approver")
    area = make_area(admin, "Fuzz hall")
    renamed = make_area(admin, "Fuzz room to rename")
    today = local_today()

    def devices_of(person, n: int = SEEDED) -> list[int]:
        return [make_device(person).id for _ in range(n)]

    def lost_devices_of(person) -> list[int]:
        ids = devices_of(person)
        for device_id in ids:
            committed(
                lambda session, actor, d: devices.report_lost(session, actor, session.get(PersonalDevice, d), stolen=False),
                person,
                device_id,
            )
        return ids

    mine = {role: devices_of(person, 1) for role, person in people.items()}
    requests_for_decision = [ask(staff, area, make_device(staff)).id for _ in range(SEEDED)]
    emergencies = [
        ask(staff, area, make_device(staff), emergency=True, emergency_reason="A parent is in hospital and may call.").id
        for _ in range(SEEDED)
    ]
    waiting = {
        role: [ask(person, area, make_device(person)).id for _ in range(SEEDED)]
        for role, person in people.items()
        if role != "approver"
    }
    waiting["approver"] = [ask(approver, area, make_device(approver)).id for _ in range(SEEDED)]
    approved = {}
    for role, person in people.items():
        approved[role] = []
        for _ in range(SEEDED):
            asked = ask(person, area, make_device(person))
            committed(permissions.decide, other_approver, asked.id, "approve")
            approved[role].append(asked.id)
    standing = []
    for _ in range(SEEDED):
        granted = committed(
            permissions.grant_standing_permission,
            other_approver,
            person_id=staff.id,
            personal_device_id=None,
            area_ids=[],
            starts_on=today,
            ends_on=today + timedelta(days=30),
            reason="Medical need",
        )
        standing.append(granted.id)
    assets_to_change = [make_asset(office).id for _ in range(2)]
    assets_to_lend = [make_asset(office).id for _ in range(SEEDED)]
    lent = []
    for _ in range(SEEDED):
        asset = make_asset(office)
        lend(office, asset, staff)
        lent.append(asset.id)
    staff_loan = lend(office, make_asset(office), staff).id
    tag = db.session.get(SchoolAsset, assets_to_change[0]).tag
    subscriptions = {}
    for role, person in people.items():
        subscriptions[role] = []
        for n in range(SEEDED):
            p256dh, auth = browser_keys()
            with write_intent():
                made, _new = push.subscribe(
                    db.session,
                    person,
                    endpoint=f"https://fcm.googleapis.com/fcm/send/fuzz-{role}-{n}",
                    p256dh=p256dh,
                    auth=auth,
                    user_agent="fuzz",
                    services=push.PushServices.public(),
                )
                db.session.commit()
            subscriptions[role].append(made.id)
    action_bodies = []
    for _ in range(SEEDED):
        asked = ask(staff, area, make_device(staff))
        with write_intent():
            issued = action_tokens.issue_action_tokens(db.session, approver, "permission_request", asked.id, timedelta(hours=1))
            db.session.commit()
        action_bodies.append({"token": issued["approve"], "action": "approve"})
    # No stock-take is open: the run starts its own, scans it and closes it (tests/fuzz_hooks.py, _FEEDS).
    # Bookings (issue 17): each role books its own camera, one lesson period after another on the days ahead.
    cameras = {role: bookable_asset(office).id for role in ROLES}
    # School days only: a booking on a Saturday or a Sunday is refused (whatever day the suite runs on).
    school_days = [day for day in (today + timedelta(days=n) for n in range(1, 60)) if day.weekday() < 5]
    slots = [(school_days[n // 6], f"P{n % 6 + 1}") for n in range(SEEDED * 4)]
    booked = {
        role: [make_booking(person, asset_id=cameras[role], day=day, periods=(period,)).id for day, period in slots[: SEEDED * 2]]
        for role, person in people.items()
    }
    kit = make_kit(office, members=2)

    def fresh_keys() -> dict:
        p256dh, auth = browser_keys()
        return {"p256dh": p256dh, "auth": auth}

    each = lambda pools: {role: pools[role] for role in ROLES}  # noqa: E731
    everyone = lambda ids: {"*": ids}  # noqa: E731
    operations = {
        "POST /devices": {
            "consume": True,
            "body": {role: [{"imei1": make_imei(), "imei2": ""} for _ in range(SEEDED)] for role in ROLES},
        },
        "GET /devices/{device_id}": {"path": {"device_id": each(mine)}},
        "PATCH /devices/{device_id}": {
            "path": {"device_id": each(mine)},
            "body": {"*": [{"imei1": "", "imei2": "", "kind": "tablet"}]},
        },
        "POST /devices/{device_id}/retire": {
            "consume": True,
            "path": {"device_id": {role: devices_of(p) for role, p in people.items()}},
        },
        "POST /devices/{device_id}/report-lost": {
            "consume": True,
            "path": {"device_id": {role: devices_of(p) for role, p in people.items()}},
        },
        "POST /devices/{device_id}/found": {
            "consume": True,
            "path": {"device_id": {role: lost_devices_of(p) for role, p in people.items()}},
        },
        "PATCH /areas/{area_id}": {"path": {"area_id": everyone([renamed.id])}, "body": {"*": [{"rule": "ask"}]}},
        "POST /areas/{area_id}/rotate-poster": {"path": {"area_id": everyone([renamed.id])}},
        "POST /permission-requests": {
            "consume": True,
            "body": {
                role: [
                    {
                        "area_id": area.id,
                        "device": f"personal-{make_device(person).id}",
                        "reason": "urgent_call",
                        "duration": "one_hour",
                        "until": "",
                        "emergency": False,
                        "emergency_reason": "",
                        "reason_other": "",
                    }
                    for _ in range(SEEDED)
                ]
                for role, person in people.items()
            },
        },
        "GET /permission-requests/{request_id}": {"path": {"request_id": {role: ids[:1] for role, ids in approved.items()}}},
        "POST /permission-requests/{request_id}/decision": {
            "consume": True,
            "path": {"request_id": everyone(requests_for_decision)},
            "body": {"*": [{"decision": "approve", "until": ""}]},
        },
        "POST /permission-requests/{request_id}/review": {
            "consume": True,
            "path": {"request_id": everyone(emergencies)},
            "body": {"*": [{"outcome": "justified"}]},
        },
        "POST /permission-requests/{request_id}/end": {"consume": True, "path": {"request_id": each(approved)}},
        "POST /permission-requests/{request_id}/withdraw": {"consume": True, "path": {"request_id": each(waiting)}},
        "POST /standing-permissions": {
            "body": {
                "*": [
                    {
                        "person_id": staff.id,
                        "personal_device_id": None,
                        "area_ids": [],
                        "starts_on": today.isoformat(),
                        "ends_on": (today + timedelta(days=30)).isoformat(),
                    }
                ]
            }
        },
        "POST /standing-permissions/{standing_id}/end": {"consume": True, "path": {"standing_id": everyone(standing)}},
        "POST /assets": {"consume": True, "body": {"*": [{"tag": f"FUZZ-{n}", "imei": ""} for n in range(SEEDED * 3)]}},
        "GET /assets/{asset_id}": {"path": {"asset_id": everyone(assets_to_change)}},
        "PATCH /assets/{asset_id}": {
            "path": {"asset_id": everyone(assets_to_change[1:])},
            "body": {"*": [{"imei": "", "tag": f"FUZZ-KEPT-{assets_to_change[1]}"}]},
        },
        "POST /assets/{asset_id}/check-out": {
            "consume": True,
            "path": {"asset_id": everyone(assets_to_lend)},
            "body": {"*": [{"borrower_id": staff.id, "due_on": (today + timedelta(days=7)).isoformat()}]},
        },
        "POST /assets/{asset_id}/check-in": {"consume": True, "path": {"asset_id": everyone(lent)}},
        "GET /loans/{loan_id}": {"path": {"loan_id": everyone([staff_loan])}},
        "POST /stocktakes": {"body": {"*": [{"location": ""}]}},
        "GET /stocktakes/{stocktake_id}": {},
        "POST /stocktakes/{stocktake_id}/scans": {"body": {"*": [{"tag": tag}]}},
        "POST /push-subscriptions": {
            "consume": True,
            "body": {
                "*": [
                    {"endpoint": f"https://fcm.googleapis.com/fcm/send/fuzz-new-{n}", "keys": fresh_keys()} for n in range(SEEDED)
                ]
            },
        },
        "DELETE /push-subscriptions/{subscription_id}": {"consume": True, "path": {"subscription_id": each(subscriptions)}},
        "POST /push-actions": {"consume": True, "body": {"*": action_bodies}},
        "POST /bookings": {
            "consume": True,
            "body": {
                role: [
                    {
                        "asset_id": cameras[role],
                        "kit_id": None,
                        "for_user_id": None,
                        "day": day.isoformat(),
                        "periods": [period],
                        "starts": "",
                        "ends": "",
                        "until_day": None,
                    }
                    for day, period in slots[SEEDED * 2 :]
                ]
                for role in ROLES
            },
        },
        "GET /bookings/{booking_id}": {"path": {"booking_id": {role: ids[:1] for role, ids in booked.items()}}},
        "POST /bookings/{booking_id}/cancel": {
            "consume": True,
            "path": {"booking_id": {r: ids[1:] for r, ids in booked.items()}},
        },
        "GET /availability": {
            "query": {"asset_id": each({role: [cameras[role]] for role in ROLES}), "kit_id": everyone([kit.id])}
        },
    }
    tokens = {role: _token(person, f"fuzz {role}") for role, person in people.items()}
    return {"tokens": tokens, "operations": operations}


@pytest.fixture
def fuzzed_server(template_database, tmp_path):
    database = tmp_path / "fuzz.db"
    shutil.copyfile(template_database["path"], database)
    instance = tmp_path / "fuzz-instance"
    instance.mkdir()
    server = LiveServer(database, instance).start()
    with server.app_context():
        plan = _seed_school()
    yield server, plan
    server.stop()
    with server.app_context():
        db.engine.dispose()


def test_business_rules_are_named_and_matched_by_status_type_and_fields():
    assert len({rule.name for rule in BUSINESS_RULES}) == len(BUSINESS_RULES)
    imei = {
        "type": "urn:lanyard:problem:validation-failed",
        "errors": {"imei1": ["That IMEI's last digit does not match the rest"]},
    }
    assert matching_rule("POST /devices", 422, imei).name.startswith("IMEI")
    assert matching_rule("POST /devices", 422, {**imei, "errors": {"make": ["Enter the make"]}}) is None
    assert matching_rule("POST /devices", 422, {**imei, "errors": {}}) is None
    assert matching_rule("POST /areas", 422, imei) is None
    assert matching_rule("POST /permission-requests", 409, {"type": "urn:lanyard:problem:already-asked"}).name.startswith(
        "One waiting"
    )
    assert matching_rule("POST /permission-requests", 409, {"type": "urn:lanyard:problem:conflict"}) is None


def test_schemathesis_finds_nothing_and_reaches_success_on_every_operation(fuzzed_server, tmp_path):
    server, plan = fuzzed_server
    plan_file, results_file = tmp_path / "plan.json", tmp_path / "results.json"
    plan_file.write_text(json.dumps(plan))
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(Path(__file__).parent / "schemathesis.toml"),
        "run",
        f"{server.url}/api/v1/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        os.environ.get("LANYARD_FUZZ_EXAMPLES", "30"),
        "--generation-deterministic",
        "--no-color",
    ]
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks",
        "LANYARD_FUZZ_PLAN": str(plan_file),
        "LANYARD_FUZZ_RESULTS": str(results_file),
    }
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200, cwd=tmp_path, env=environment, check=False)  # noqa: S603
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    statuses = json.loads(results_file.read_text())["statuses"]
    with server.app_context():
        described = {
            f"{method.upper()} {path}"
            for path, item in server.app.test_client().get("/api/v1/openapi.json").get_json()["paths"].items()
            for method in item
        }
    assert described - set(statuses) == set(), "operations the run never called"
    never = sorted(op for op, counts in statuses.items() if not any(code.startswith("2") for code in counts))
    assert never == [], f"operations that never answered 2xx: {never}\n{json.dumps(statuses, indent=1)}"
