"""The audit log over the API: filtered cursor pages and the chain's verification."""

from __future__ import annotations

from typing import Any

from flask_login import current_user

from app.access import roles_required
from app.api import bp
from app.api.openapi import json_content, register_paths
from app.api.shapes import PersonRef, Shape, Timestamp, reply
from app.audit_log.routes import READERS, filters_from_request, heads_path, int_arg
from app.extensions import db
from app.services import audit_log


class AuditEvent(Shape):
    seq: int
    occurred_at: Timestamp
    actor: PersonRef | None
    action: str
    subject_type: str
    subject_id: str
    details: dict[str, Any]
    ip: str
    hash: str

    @classmethod
    def of(cls, event) -> AuditEvent:
        return cls(**audit_log.describe(event))


class AuditEventPage(Shape):
    items: list[AuditEvent]
    next_before: int | None


class AuditVerification(Shape):
    checked_at: Timestamp
    ok: bool
    verified_count: int
    last_seq: int | None
    broken_at_seq: int | None
    problem: str

    @classmethod
    def maybe(cls, verification) -> AuditVerification | None:
        if verification is None:
            return None
        return cls(
            checked_at=verification.checked_at,
            ok=verification.broken_at_seq is None and not verification.problem,
            verified_count=verification.verified_count,
            last_seq=verification.last_seq,
            broken_at_seq=verification.broken_at_seq,
            problem=verification.problem,
        )


class LatestVerification(Shape):
    latest: AuditVerification | None


@bp.get("/audit-events")
@roles_required(*READERS)
def list_audit_events():
    filters, _typed = filters_from_request()
    events, next_cursor = audit_log.page_of_events(db.session, filters, before=int_arg("before"))
    return reply(AuditEventPage(items=[AuditEvent.of(e) for e in events], next_before=next_cursor))


@bp.get("/audit-events/verify")
@roles_required(*READERS)
def latest_verification():
    return reply(LatestVerification(latest=AuditVerification.maybe(audit_log.latest_verification(db.session))))


@bp.post("/audit-events/verify")
@roles_required(*READERS)
def verify_audit_events():
    audit_log.verify_and_record(db.session, current_user, audit_log.published_heads(heads_path()))
    db.session.commit()
    return reply(LatestVerification(latest=AuditVerification.maybe(audit_log.latest_verification(db.session))))


_problem = {"$ref": "#/components/responses/Problem"}
_verification = json_content(LatestVerification, "The latest recorded verification")
_filters = [
    {"name": name, "in": "query", "schema": schema}
    for name, schema in (
        ("person", {"type": "string", "maxLength": 100}),
        ("device", {"type": "string", "pattern": "^[0-9]{0,11}$"}),
        ("asset", {"type": "string", "pattern": "^[0-9]{0,11}$"}),
        ("area", {"type": "string", "pattern": "^[0-9]{0,11}$"}),
        ("action", {"type": "string", "maxLength": 60}),
        ("since", {"type": "string", "format": "date"}),
        ("until", {"type": "string", "format": "date"}),
        ("before", {"type": "string", "pattern": "^[0-9]{0,11}$", "description": "cursor: next_before of the previous page"}),
    )
]

register_paths(
    {
        "/audit-events": {
            "get": {
                "summary": "Audit events, newest first, filtered; cursor pagination",
                "operationId": "listAuditEvents",
                "parameters": _filters,
                "responses": {
                    "200": json_content(AuditEventPage, "A page of events"),
                    "401": _problem,
                    "403": _problem,
                },
            }
        },
        "/audit-events/verify": {
            "get": {
                "summary": "The latest chain verification",
                "operationId": "getAuditVerification",
                "responses": {"200": _verification, "401": _problem, "403": _problem},
            },
            "post": {
                "summary": "Verify the chain now",
                "operationId": "verifyAuditEvents",
                "responses": {"200": _verification, "401": _problem, "403": _problem},
            },
        },
    }
)
