"""The audit log over the API: filtered cursor pages and the chain's verification."""

from __future__ import annotations

from flask_login import current_user

from app.access import roles_required
from app.api import bp
from app.api.openapi import register_paths
from app.audit_log.routes import READERS, filters_from_request, heads_path, int_arg
from app.extensions import db
from app.services import audit_log


def _verification_json(verification) -> dict | None:
    if verification is None:
        return None
    return {
        "checked_at": verification.checked_at.isoformat(),
        "ok": verification.broken_at_seq is None and not verification.problem,
        "verified_count": verification.verified_count,
        "last_seq": verification.last_seq,
        "broken_at_seq": verification.broken_at_seq,
        "problem": verification.problem,
    }


@bp.get("/audit-events")
@roles_required(*READERS)
def list_audit_events():
    filters, _typed = filters_from_request()
    events, next_cursor = audit_log.page_of_events(db.session, filters, before=int_arg("before"))
    return {"items": [audit_log.describe(e) for e in events], "next_before": next_cursor}


@bp.get("/audit-events/verify")
@roles_required(*READERS)
def latest_verification():
    return {"latest": _verification_json(audit_log.latest_verification(db.session))}


@bp.post("/audit-events/verify")
@roles_required(*READERS)
def verify_audit_events():
    audit_log.verify_and_record(db.session, current_user, audit_log.published_heads(heads_path()))
    db.session.commit()
    return {"latest": _verification_json(audit_log.latest_verification(db.session))}


_problem = {"$ref": "#/components/responses/Problem"}
_verification = {
    "description": "The latest recorded verification",
    "content": {"application/json": {"schema": {"type": "object", "properties": {"latest": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/AuditVerification"}]}}}}},
}
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
                    "200": {
                        "description": "A page of events",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["items", "next_before"],
                                    "properties": {
                                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEvent"}},
                                        "next_before": {"type": ["integer", "null"]},
                                    },
                                }
                            }
                        },
                    },
                    "401": _problem,
                    "403": _problem,
                },
            }
        },
        "/audit-events/verify": {
            "get": {"summary": "The latest chain verification", "operationId": "getAuditVerification", "responses": {"200": _verification, "401": _problem, "403": _problem}},
            "post": {"summary": "Verify the chain now", "operationId": "verifyAuditEvents", "responses": {"200": _verification, "401": _problem, "403": _problem}},
        },
    },
    {
        "AuditEvent": {
            "type": "object",
            "required": ["seq", "occurred_at", "action", "hash"],
            "properties": {
                "seq": {"type": "integer"},
                "occurred_at": {"type": "string", "format": "date-time"},
                "actor": {"type": ["object", "null"], "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
                "action": {"type": "string"},
                "subject_type": {"type": "string"},
                "subject_id": {"type": "string"},
                "details": {"type": "object"},
                "ip": {"type": "string"},
                "hash": {"type": "string"},
            },
        },
        "AuditVerification": {
            "type": "object",
            "properties": {
                "checked_at": {"type": "string", "format": "date-time"},
                "ok": {"type": "boolean"},
                "verified_count": {"type": "integer"},
                "last_seq": {"type": ["integer", "null"]},
                "broken_at_seq": {"type": ["integer", "null"]},
                "problem": {"type": "string"},
            },
        },
    },
)
