"""Schemathesis hooks for tests/test_api_fuzz.py: one fuzz user per role, seeded values, school rules by name.

Loaded by the schemathesis command line through SCHEMATHESIS_HOOKS. The test writes a plan (JSON, path in
LANYARD_FUZZ_PLAN): each role's API token, and for each operation the ids and body values of objects it
seeded so that a schema-valid request can succeed. These hooks

- authenticate each case as one role in turn (staff, approver, office, admin, governor), per operation,
  so role and ownership checks meet every kind of person;
- on every other schema-valid case, put a seeded id into the path and seeded values into the body (ids
  of the objects the role may act on, a valid IMEI, a push subscription's real keys): the result is still
  valid by the schema, so whatever it answers is judged like any generated case. A seeded object is used
  until a request on it succeeds, then the next one is taken;
- drop a "schema-valid request rejected" failure only when the answer is one of BUSINESS_RULES below:
  a school rule that no JSON Schema can say, named, with the status and problem type it answers;
- record every answer's status per operation in LANYARD_FUZZ_RESULTS, so the test can require a 2xx for
  each operation.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import schemathesis

ROLES = ("staff", "approver", "office", "admin", "governor")
_PROBLEM = "urn:lanyard:problem:"


@dataclass(frozen=True)
class BusinessRule:
    """A refusal of schema-valid data by a school rule: answered with ``status`` and problem ``type``.

    ``fields``: the only fields a 422 may name for this rule (a 422 naming any other field is a finding).
    """

    name: str
    operations: tuple[str, ...]
    status: int
    type: str
    fields: frozenset[str] = frozenset()


def _rule(name: str, operations: str, status: int, slug: str, *fields: str) -> BusinessRule:
    return BusinessRule(name, tuple(operations.split(", ")), status, _PROBLEM + slug, frozenset(fields))


_DEVICES = "POST /devices, PATCH /devices/{device_id}"
_ASSETS = "POST /assets, PATCH /assets/{asset_id}"
_DEVICE_STATE = "POST /devices/{device_id}/retire, POST /devices/{device_id}/report-lost, POST /devices/{device_id}/found, PATCH /devices/{device_id}"
_DECIDED = (
    "POST /permission-requests/{request_id}/decision, POST /permission-requests/{request_id}/review, "
    "POST /permission-requests/{request_id}/end, POST /permission-requests/{request_id}/withdraw"
)

# Every refusal of schema-valid data the fuzzer may meet, by name. Nothing else may answer 409 or 422 to it;
# 403 and 404 are the role and ownership checks (another person's object is not found), accepted as such.
BUSINESS_RULES = (
    _rule(
        "A week at a glance is for exactly one asset, kit or kind, in a real ISO week within three years",
        "GET /availability/week",
        422,
        "validation-failed",
        "asset_id",
        "week",
    ),
    _rule(
        "IMEI: 15 digits with a matching check digit (or a 16-digit IMEISV), never a test IMEI",
        _DEVICES,
        422,
        "validation-failed",
        "imei1",
        "imei2",
    ),
    _rule(
        "IMEI: a smartphone needs IMEI 1, given before IMEI 2 and different from it",
        _DEVICES,
        422,
        "validation-failed",
        "imei1",
        "imei2",
    ),
    _rule(
        "IMEI: one IMEI, one device in the register (refused without naming the owner)",
        _DEVICES,
        422,
        "validation-failed",
        "imei1",
        "imei2",
    ),
    _rule("IMEI: your own device registered twice (a double tap) names it", "POST /devices", 409, "conflict"),
    _rule(
        "IMEI: an asset's IMEI is valid, unique, and only on work mobiles and tablets", _ASSETS, 422, "validation-failed", "imei"
    ),
    _rule("Asset tags are unique", _ASSETS, 422, "validation-failed", "tag"),
    _rule("Asset tags are unique (a concurrent change)", _ASSETS, 409, "conflict", "tag"),
    _rule(
        "An asset on loan keeps its status until it is checked in", "PATCH /assets/{asset_id}", 422, "validation-failed", "status"
    ),
    _rule(
        "A device's state: only an active device is retired or reported lost, only a lost one found",
        _DEVICE_STATE,
        409,
        "conflict",
    ),
    _rule("Area names are unique", "POST /areas, PATCH /areas/{area_id}", 422, "validation-failed", "name"),
    _rule("One waiting request per person, device and area", "POST /permission-requests", 409, "already-asked"),
    _rule(
        "A request names one of your own active devices, a time still to come today, a reason for other and an emergency in 10 to 300 characters",
        "POST /permission-requests",
        422,
        "validation-failed",
        "device",
        "until",
        "reason_other",
        "emergency_reason",
        "duration",
    ),
    _rule(
        "An area closed to phones and recording devices refuses every request, even an emergency",
        "POST /permission-requests",
        422,
        "validation-failed",
        "area",
    ),
    _rule(
        "One decision per request, one review per emergency; only a pending request is withdrawn, only an approved one ended",
        _DECIDED,
        409,
        "conflict",
    ),
    _rule(
        "An approval's shorter end is a time still to come, within the request",
        "POST /permission-requests/{request_id}/decision",
        422,
        "validation-failed",
        "until",
    ),
    _rule(
        "Only an emergency is reviewed, and not_justified needs a note",
        "POST /permission-requests/{request_id}/review",
        422,
        "validation-failed",
        "note",
        "outcome",
    ),
    _rule(
        "A standing permission is for someone else, their own device and existing areas, from a first day to a last day within a year",
        "POST /standing-permissions",
        422,
        "validation-failed",
        "person",
        "device",
        "areas",
        "starts_on",
        "ends_on",
    ),
    _rule("A standing permission ends once", "POST /standing-permissions/{standing_id}/end", 409, "conflict"),
    _rule(
        "One loan at a time, of an available asset",
        "POST /assets/{asset_id}/check-out, POST /assets/{asset_id}/check-in",
        409,
        "conflict",
    ),
    _rule(
        "A loan is to an active person, due today or later and within a year",
        "POST /assets/{asset_id}/check-out",
        422,
        "validation-failed",
        "borrower_id",
        "due_on",
    ),
    _rule(
        "One open stock-take at a time; a closed one takes no scans",
        "POST /stocktakes, POST /stocktakes/{stocktake_id}/scans, POST /stocktakes/{stocktake_id}/close",
        409,
        "conflict",
    ),
    _rule("A stock-take's location is some asset's home", "POST /stocktakes", 422, "validation-failed", "location"),
    _rule("A scan is a Lanyard label or an asset tag", "POST /stocktakes/{stocktake_id}/scans", 422, "validation-failed", "tag"),
    _rule(
        "Push goes only to a known push service, with the browser's real P-256 key and auth secret",
        "POST /push-subscriptions",
        422,
        "validation-failed",
        "endpoint",
        "p256dh",
        "auth",
    ),
    _rule("A notification button cannot decide what was decided already", "POST /push-actions", 409, "conflict"),
    _rule(
        "A booking is of one asset or kit, by neighbouring periods or a start before its end, not over, within a year "
        "ahead and 5 school days long; the office books for people who work here",
        "POST /bookings",
        422,
        "validation-failed",
        "asset_id",
        "day",
        "periods",
        "starts",
        "ends",
        "until_day",
        "purpose",
        "for_user_id",
    ),
    _rule(
        "No double booking: a slot taken by a booking or a loan, equipment retired, lost or in repair, or in a kit, is refused",
        "POST /bookings",
        409,
        "conflict",
    ),
    _rule("A day's bookings are asked for a day between 2000 and 9000", "GET /bookings", 422, "validation-failed", "day"),
    _rule("Only a booking still booked is cancelled", "POST /bookings/{booking_id}/cancel", 409, "conflict"),
    _rule(
        "Availability is asked for one asset or kit, over at most 62 days, ending after it starts",
        "GET /availability",
        422,
        "validation-failed",
        "asset_id",
        "to",
    ),
)


def matching_rule(operation: str, status: int, problem: object) -> BusinessRule | None:
    """The listed rule a problem answer is, or None when it is none of them."""
    if not isinstance(problem, dict):
        return None
    named = set(problem.get("errors") or {})
    for rule in BUSINESS_RULES:
        same = operation in rule.operations and status == rule.status and problem.get("type") == rule.type
        if same and (status != 422 or (named and named <= rule.fields)):
            return rule
    return None


# The plan and the record --------------------------------------------------------------------------------

_plan: dict = json.loads(Path(os.environ["LANYARD_FUZZ_PLAN"]).read_text()) if os.environ.get("LANYARD_FUZZ_PLAN") else {}
_role_of_token = {secret: role for role, secret in _plan.get("tokens", {}).items()}
_turns: Counter = Counter()
_seeded: dict[int, str] = {}
_statuses: dict[str, Counter] = defaultdict(Counter)
_rules_met: dict[str, Counter] = defaultdict(Counter)


def _save() -> None:
    target = os.environ.get("LANYARD_FUZZ_RESULTS")
    if target:
        record = {
            "statuses": {op: dict(c) for op, c in _statuses.items()},
            "rules": {op: dict(c) for op, c in _rules_met.items()},
        }
        Path(target).write_text(json.dumps(record, indent=1, sort_keys=True))


@schemathesis.auth(refresh_interval=None)
class OneRoleAtATime:
    """Each operation's cases go to staff, approver, office, admin and governor in turn."""

    def get(self, case, context):
        label = case.operation.label
        _turns[("auth", label)] += 1
        return ROLES[_turns[("auth", label)] % len(ROLES)]

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {_plan['tokens'][data]}"}


def _role(case) -> str | None:
    header = (case.headers or {}).get("Authorization", "")
    return _role_of_token.get(header.removeprefix("Bearer "))


def _positive(case) -> bool:
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


@schemathesis.hook
def before_call(context, case, kwargs):
    """Every other schema-valid case of an operation acts on a seeded object with seeded values."""
    label = case.operation.label
    seeds = _plan.get("operations", {}).get(label)
    if not seeds or not _positive(case):
        return
    _turns[("seed", label)] += 1
    if _turns[("seed", label)] % 2:
        return
    role = _role(case) or "public"
    for name, pools in seeds.get("path", {}).items():
        pool = pools.get(role) or pools.get("*") or []
        if pool:
            case.path_parameters = {**(case.path_parameters or {}), name: pool[0]}
    queries = {name: pools.get(role) or pools.get("*") or [] for name, pools in seeds.get("query", {}).items()}
    if queries:
        # One seeded query argument at a time (asset_id or kit_id: the API asks for one of them).
        name = sorted(queries)[_turns[("seed", label)] // 2 % len(queries)]
        if queries[name]:
            case.query = {name: queries[name][0]}
    bodies = seeds.get("body", {})
    overlays = bodies.get(role) or bodies.get("*") or []
    if overlays and isinstance(case.body, dict):
        case.body = {**case.body, **overlays[0]}
    _seeded[id(case)] = role


_FEEDS = {
    # A stock-take the run starts is read and scanned, and one it has scanned is closed (one is open at a time).
    "POST /stocktakes": (
        ("GET /stocktakes/{stocktake_id}", "stocktake_id"),
        ("POST /stocktakes/{stocktake_id}/scans", "stocktake_id"),
    ),
    "POST /stocktakes/{stocktake_id}/scans": (("POST /stocktakes/{stocktake_id}/close", "stocktake_id"),),
}


def _answered_id(response) -> object:
    try:
        answer = response.json()
    except ValueError:
        return None
    return answer.get("id") if isinstance(answer, dict) else None


@schemathesis.hook
def after_call(context, case, response):
    label = case.operation.label
    _statuses[label][str(response.status_code)] += 1
    role = _seeded.pop(id(case), None)
    if role is not None and 200 <= response.status_code < 300:
        seeds = _plan["operations"][label]
        if seeds.get("consume"):
            for pools in seeds.get("path", {}).values():
                pool = pools.get(role) or pools.get("*") or []
                if len(pool) > 1:
                    pool.pop(0)
            overlays = seeds.get("body", {}).get(role) or seeds.get("body", {}).get("*") or []
            if len(overlays) > 1:
                overlays.pop(0)
    if label in _FEEDS and 200 <= response.status_code < 300:
        for target, name in _FEEDS[label]:
            made = _answered_id(response) if label == "POST /stocktakes" else (case.path_parameters or {}).get(name)
            if isinstance(made, int):
                _plan["operations"].setdefault(target, {}).setdefault("path", {})[name] = {"*": [made]}
    _save()


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keep every failure except a schema-valid request refused by a listed school rule."""
    if type(failure).__name__ != "RejectedPositiveData":
        return True
    try:
        problem = response.json()
    except ValueError:
        return True
    rule = matching_rule(case.operation.label, response.status_code, problem)
    if rule is None:
        return True
    _rules_met[case.operation.label][rule.name] += 1
    _save()
    return False
