"""Areas, permission requests (ask, decide, end, withdraw), standing permissions and the Now board."""

from __future__ import annotations

from datetime import date

from flask import current_app, request
from flask_login import current_user, login_required

from app.api import bp
from app.api.helpers import ID_SCHEMA, bool_field, id_field, id_list_field, json_body, text_field
from app.api.openapi import register_paths
from app.clock import utcnow
from app.extensions import db
from app.models import Area, PermissionRequest, Role, StandingPermission
from app.services import areas, permissions
from app.services.errors import Forbidden, ValidationFailed


def _at(value) -> str | None:
    return value.isoformat() if value else None


def area_json(area: Area, with_poster: bool = False) -> dict:
    body = {"id": area.id, "name": area.name, "rule": area.rule, "rule_explanation": area.rule_explanation}
    if with_poster:
        body["poster_url"] = areas.poster_url(current_app.config["BASE_URL"], area)
    return body


def review_json(asked: PermissionRequest) -> dict | None:
    if asked.reviewed_at is None:
        return None
    return {
        "outcome": asked.review_outcome,
        "note": asked.review_note,
        "reviewed_by": {"id": asked.reviewed_by.id, "name": asked.reviewed_by.display_name},
        "reviewed_at": _at(asked.reviewed_at),
    }


def request_json(asked: PermissionRequest) -> dict:
    # What was happening in an emergency is for the requester and the approvers, not the office's Now board.
    sees_reason = asked.requester_id == current_user.id or current_user.has_role(Role.APPROVER)
    return {
        "id": asked.id,
        "requester": {"id": asked.requester.id, "name": asked.requester.display_name},
        "area": {"id": asked.area.id, "name": asked.area.name},
        "device": {"label": asked.device_label, "personal_device_id": asked.personal_device_id, "asset_id": asked.asset_id},
        "reason": asked.reason,
        "reason_other": asked.reason_other,
        "wanted_until": _at(asked.wanted_until),
        "status": asked.status,
        "status_text": permissions.describe_status(asked),
        "decided_by": {"id": asked.decided_by.id, "name": asked.decided_by.display_name} if asked.decided_by else None,
        "decided_at": _at(asked.decided_at),
        "decision_note": asked.decision_note,
        "approved_until": _at(asked.approved_until),
        "standing_permission_id": asked.standing_permission_id,
        "ended_at": _at(asked.ended_at),
        "escalated_at": _at(asked.escalated_at),
        "created_at": _at(asked.created_at),
        "emergency": asked.emergency,
        "emergency_reason": asked.emergency_reason if sees_reason else "",
        "review": review_json(asked),
        "review_escalated_at": _at(asked.review_escalated_at),
    }


def standing_json(standing: StandingPermission) -> dict:
    return {
        "id": standing.id,
        "person": {"id": standing.person.id, "name": standing.person.display_name},
        "personal_device_id": standing.personal_device_id,
        "area_ids": [a.id for a in standing.areas],
        "starts_on": standing.starts_on.isoformat(),
        "ends_on": standing.ends_on.isoformat(),
        "reason": standing.reason,
        "granted_by": {"id": standing.granted_by.id, "name": standing.granted_by.display_name},
        "ended_at": _at(standing.ended_at),
    }


def _commit_and(body: dict, status: int = 200):
    """Commit, then answer with a body built before the commit (so it need not be read back)."""
    db.session.commit()
    return body, status


def _require(*roles: Role) -> None:
    if not current_user.has_role(*roles):
        raise Forbidden("Your role does not allow this.")


def _date_field(data: dict, name: str) -> date | None:
    text = text_field(data, name)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise ValidationFailed(f"{name} must be a date.", {name: ["Use a date like 2026-12-31."]}) from error


# Areas ------------------------------------------------------------------------------------------------


@bp.get("/areas")
@login_required
def list_areas():
    admin = current_user.has_role(Role.ADMIN)
    return {"items": [area_json(a, with_poster=admin) for a in areas.list_areas(db.session)]}


@bp.post("/areas")
@login_required
def create_area():
    _require(Role.ADMIN)
    data = json_body({"name", "rule"})
    area = areas.create_area(db.session, current_user, name=text_field(data, "name"), rule=text_field(data, "rule", "ask"))
    db.session.commit()
    return area_json(area, with_poster=True), 201


@bp.patch("/areas/<int:area_id>")
@login_required
def update_area(area_id: int):
    _require(Role.ADMIN)
    area = areas.get_area(db.session, area_id)
    data = json_body({"name", "rule"})
    areas.update_area(db.session, current_user, area, name=text_field(data, "name", area.name), rule=text_field(data, "rule", area.rule))
    db.session.commit()
    return area_json(area, with_poster=True)


@bp.post("/areas/<int:area_id>/rotate-poster")
@login_required
def rotate_area_poster(area_id: int):
    _require(Role.ADMIN)
    area = areas.rotate_poster(db.session, current_user, areas.get_area(db.session, area_id))
    db.session.commit()
    return area_json(area, with_poster=True)


# Permission requests ------------------------------------------------------------------------------------


@bp.get("/permission-requests")
@login_required
def list_permission_requests():
    scope = request.args.get("scope", "mine")
    if scope == "pending":
        _require(Role.APPROVER)
        found = permissions.pending_requests(db.session)
    elif scope == "mine":
        found = permissions.requests_of(db.session, current_user)
    else:
        raise ValidationFailed("Unknown scope.", {"scope": ["Use mine or pending."]})
    return {"items": [request_json(r) for r in found]}


@bp.post("/permission-requests")
@login_required
def create_permission_request():
    data = json_body({"area_id", "device", "reason", "reason_other", "duration", "until", "emergency", "emergency_reason"})
    area = areas.get_area(db.session, id_field(data, "area_id"))
    # An area-rule refusal is audited; the error handler commits it (keep_changes).
    asked = permissions.request_permission(
        db.session,
        current_user,
        area,
        device_key=text_field(data, "device"),
        reason=text_field(data, "reason"),
        reason_other=text_field(data, "reason_other"),
        duration=text_field(data, "duration"),
        until=text_field(data, "until"),
        emergency=bool_field(data, "emergency"),
        emergency_reason=text_field(data, "emergency_reason"),
    )
    return _commit_and(request_json(asked), 201)


@bp.get("/permission-requests/<int:request_id>")
@login_required
def get_permission_request(request_id: int):
    return request_json(permissions.visible_request(db.session, current_user, request_id))


@bp.post("/permission-requests/<int:request_id>/decision")
@login_required
def decide_permission_request(request_id: int):
    _require(Role.APPROVER)
    permissions.visible_request(db.session, current_user, request_id)
    data = json_body({"decision", "note", "until"})
    until_text = text_field(data, "until")
    until = permissions.parse_until(until_text, utcnow()) if until_text.strip() else None
    decided = permissions.decide(
        db.session, current_user, request_id, text_field(data, "decision"), note=text_field(data, "note"), until=until
    )
    return _commit_and(request_json(decided))


@bp.post("/permission-requests/<int:request_id>/review")
@login_required
def review_permission_request(request_id: int):
    _require(Role.APPROVER)
    permissions.visible_request(db.session, current_user, request_id)
    data = json_body({"outcome", "note"})
    reviewed = permissions.review_emergency(
        db.session, current_user, request_id, text_field(data, "outcome"), note=text_field(data, "note")
    )
    return _commit_and(request_json(reviewed))


@bp.post("/permission-requests/<int:request_id>/end")
@login_required
def end_permission_request(request_id: int):
    return _commit_and(request_json(permissions.end_permission(db.session, current_user, request_id)))


@bp.post("/permission-requests/<int:request_id>/withdraw")
@login_required
def withdraw_permission_request(request_id: int):
    return _commit_and(request_json(permissions.withdraw(db.session, current_user, request_id)))


# Standing permissions and Now -----------------------------------------------------------------------------


@bp.get("/standing-permissions")
@login_required
def list_standing_permissions():
    if current_user.has_role(Role.APPROVER):
        found = permissions.standing_permissions(db.session, include_ended=request.args.get("ended") == "true")
    else:
        found = permissions.standing_permissions_of(db.session, current_user)
    return {"items": [standing_json(s) for s in found]}


@bp.post("/standing-permissions")
@login_required
def grant_standing_permission():
    _require(Role.APPROVER)
    data = json_body({"person_id", "personal_device_id", "area_ids", "starts_on", "ends_on", "reason"})
    standing = permissions.grant_standing_permission(
        db.session,
        current_user,
        person_id=id_field(data, "person_id"),
        personal_device_id=id_field(data, "personal_device_id", required=False),
        area_ids=id_list_field(data, "area_ids"),
        starts_on=_date_field(data, "starts_on"),
        ends_on=_date_field(data, "ends_on"),
        reason=text_field(data, "reason"),
    )
    db.session.commit()
    return standing_json(standing), 201


@bp.post("/standing-permissions/<int:standing_id>/end")
@login_required
def end_standing_permission(standing_id: int):
    _require(Role.APPROVER)
    standing = permissions.end_standing_permission(db.session, current_user, standing_id)
    db.session.commit()
    return standing_json(standing)


@bp.get("/now")
@login_required
def now_board():
    _require(Role.APPROVER, Role.OFFICE)
    return {"as_at": utcnow().isoformat(), "items": [request_json(r) for r in permissions.active_permissions(db.session, utcnow())]}


# OpenAPI ------------------------------------------------------------------------------------------------

_problem = {"$ref": "#/components/responses/Problem"}


def _json(schema: str) -> dict:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _list_of(schema: str) -> dict:
    return {
        "application/json": {
            "schema": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {"$ref": f"#/components/schemas/{schema}"}}}}
        }
    }


def _op(summary: str, op_id: str, schema: str, ok: str = "200", body: str | None = None, params=None, errors=("401", "404")) -> dict:
    operation: dict = {
        "summary": summary,
        "operationId": op_id,
        "responses": {ok: {"description": summary, "content": _json(schema)}, **{code: _problem for code in errors}},
    }
    if params:
        operation["parameters"] = params
    if body:
        operation["requestBody"] = {"required": True, "content": _json(body)}
    return operation


def _path_id(name: str) -> list[dict]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}]


_person = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}
_nullable_time = {"type": ["string", "null"], "format": "date-time"}
_request_id = _path_id("request_id")

register_paths(
    {
        "/areas": {
            "get": {
                "summary": "Every area (admins also get each poster's URL)",
                "operationId": "listAreas",
                "responses": {"200": {"description": "Areas", "content": _list_of("Area")}, "401": _problem},
            },
            "post": _op("Add an area (admin)", "createArea", "Area", "201", "AreaInput", errors=("401", "403", "422")),
        },
        "/areas/{area_id}": {
            "patch": _op("Rename an area or change its rule (admin)", "updateArea", "Area", body="AreaInput", params=_path_id("area_id"), errors=("401", "403", "404", "422")),
        },
        "/areas/{area_id}/rotate-poster": {
            "post": _op("Give an area a new poster token: old posters stop working (admin)", "rotateAreaPoster", "Area", params=_path_id("area_id"), errors=("401", "403", "404")),
        },
        "/permission-requests": {
            "get": {
                "summary": "My requests, newest first; approvers may ask for scope=pending (oldest first)",
                "operationId": "listPermissionRequests",
                "parameters": [{"name": "scope", "in": "query", "schema": {"type": "string", "enum": ["mine", "pending"]}}],
                "responses": {"200": {"description": "Requests", "content": _list_of("PermissionRequest")}, "401": _problem, "403": _problem, "422": _problem},
            },
            "post": _op(
                "Ask to take a device into an area; approved at once when a standing permission covers it, or as an emergency override (emergency with a reason). "
                "409 (already-asked) while the same person waits for a decision on the same device and area: request_id and request_url name that request. "
                "Approving a device in an area ends its approval elsewhere (one device, one place).",
                "createPermissionRequest",
                "PermissionRequest",
                "201",
                "PermissionRequestInput",
                errors=("401", "404", "409", "422"),
            ),
        },
        "/permission-requests/{request_id}": {
            "get": _op("One request (its requester, or an approver)", "getPermissionRequest", "PermissionRequest", params=_request_id),
        },
        "/permission-requests/{request_id}/decision": {
            "post": _op(
                "Approve or deny a pending request (approvers; never your own). 409 names who decided first.",
                "decidePermissionRequest",
                "PermissionRequest",
                body="Decision",
                params=_request_id,
                errors=("401", "403", "404", "409", "422"),
            ),
        },
        "/permission-requests/{request_id}/review": {
            "post": _op(
                "Review an emergency override once: justified or not_justified (a note is required then). Approvers; never your own. 409 names who reviewed first.",
                "reviewPermissionRequest",
                "PermissionRequest",
                body="Review",
                params=_request_id,
                errors=("401", "403", "404", "409", "422"),
            ),
        },
        "/permission-requests/{request_id}/end": {
            "post": _op("I've left the room: end an approved permission (requester)", "endPermissionRequest", "PermissionRequest", params=_request_id, errors=("401", "404", "409")),
        },
        "/permission-requests/{request_id}/withdraw": {
            "post": _op("Withdraw a pending request (requester)", "withdrawPermissionRequest", "PermissionRequest", params=_request_id, errors=("401", "404", "409")),
        },
        "/standing-permissions": {
            "get": {
                "summary": "Current standing permissions (approvers: everyone's, ended=true for past ones too; others: their own)",
                "operationId": "listStandingPermissions",
                "parameters": [{"name": "ended", "in": "query", "schema": {"type": "string", "enum": ["true", "false"]}}],
                "responses": {"200": {"description": "Standing permissions", "content": _list_of("StandingPermission")}, "401": _problem},
            },
            "post": _op("Grant a standing permission (approvers)", "grantStandingPermission", "StandingPermission", "201", "StandingPermissionInput", errors=("401", "403", "422")),
        },
        "/standing-permissions/{standing_id}/end": {
            "post": _op("End a standing permission early (approvers)", "endStandingPermission", "StandingPermission", params=_path_id("standing_id"), errors=("401", "403", "404", "409")),
        },
        "/now": {
            "get": {
                "summary": "Who has which device in which area right now (approvers and office)",
                "operationId": "getNow",
                "responses": {
                    "200": {
                        "description": "Active permissions, soonest to end first",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["as_at", "items"],
                                    "properties": {
                                        "as_at": {"type": "string", "format": "date-time"},
                                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/PermissionRequest"}},
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
    },
    {
        "Area": {
            "type": "object",
            "required": ["id", "name", "rule", "rule_explanation"],
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "rule": {"type": "string", "enum": ["ask", "school-devices-only", "closed"]},
                "rule_explanation": {"type": "string"},
                "poster_url": {"type": "string", "description": "Admins only: the URL in the poster's QR code"},
            },
        },
        "AreaInput": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "maxLength": 120},
                "rule": {"type": "string", "enum": ["ask", "school-devices-only", "closed"]},
            },
        },
        "PermissionRequest": {
            "type": "object",
            "required": ["id", "requester", "area", "device", "reason", "wanted_until", "status", "status_text", "created_at"],
            "properties": {
                "id": {"type": "integer"},
                "requester": _person,
                "area": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
                "device": {
                    "type": "object",
                    "properties": {
                        "label": {"type": "string"},
                        "personal_device_id": {"type": ["integer", "null"]},
                        "asset_id": {"type": ["integer", "null"]},
                    },
                },
                "reason": {"type": "string", "enum": ["medical", "urgent_call", "learning_evidence", "lesson_activity", "other"]},
                "reason_other": {"type": "string"},
                "wanted_until": {"type": "string", "format": "date-time"},
                "status": {"type": "string", "enum": ["pending", "approved", "denied", "withdrawn", "expired", "ended"]},
                "status_text": {"type": "string", "description": "The sentence the requester's page shows, in school time"},
                "decided_by": {"oneOf": [_person, {"type": "null"}]},
                "decided_at": _nullable_time,
                "decision_note": {"type": "string"},
                "approved_until": _nullable_time,
                "standing_permission_id": {"type": ["integer", "null"]},
                "ended_at": _nullable_time,
                "escalated_at": _nullable_time,
                "created_at": {"type": "string", "format": "date-time"},
                "emergency": {"type": "boolean", "description": "An emergency override: approved at once, to be reviewed within 24 hours"},
                "emergency_reason": {"type": "string", "description": "What was happening (empty for viewers other than the requester and approvers)"},
                "review": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["outcome", "note", "reviewed_by", "reviewed_at"],
                            "properties": {
                                "outcome": {"type": "string", "enum": ["justified", "not_justified"]},
                                "note": {"type": "string"},
                                "reviewed_by": _person,
                                "reviewed_at": {"type": "string", "format": "date-time"},
                            },
                        },
                        {"type": "null"},
                    ]
                },
                "review_escalated_at": {**_nullable_time, "description": "When the admins and delegates were told it was unreviewed after 24 hours"},
            },
        },
        "PermissionRequestInput": {
            "type": "object",
            "additionalProperties": False,
            "required": ["area_id", "device", "reason", "duration"],
            "properties": {
                "area_id": ID_SCHEMA,
                "device": {"type": "string", "description": "A device option key, e.g. personal-12 (your device 12) or asset-5"},
                "reason": {"type": "string", "enum": ["medical", "urgent_call", "learning_evidence", "lesson_activity", "other"]},
                "reason_other": {"type": "string", "maxLength": 200},
                "duration": {"type": "string", "enum": ["end_of_lesson", "one_hour", "rest_of_day", "until"]},
                "until": {"type": "string", "description": "With duration=until: HH:MM today in school time, or an ISO 8601 date-time"},
                "emergency": {
                    "type": "boolean",
                    "description": "An emergency that cannot wait: approved at once (to the end of the school day at most), the approvers and delegates alerted, reviewed within 24 hours. Area rules still apply.",
                },
                "emergency_reason": {"type": "string", "maxLength": 300, "description": "Required with emergency: what is happening, in a sentence (10 to 300 characters)"},
            },
        },
        "Review": {
            "type": "object",
            "additionalProperties": False,
            "required": ["outcome"],
            "properties": {
                "outcome": {"type": "string", "enum": ["justified", "not_justified"]},
                "note": {"type": "string", "maxLength": 300, "description": "Required when not_justified"},
            },
        },
        "Decision": {
            "type": "object",
            "additionalProperties": False,
            "required": ["decision"],
            "properties": {
                "decision": {"type": "string", "enum": ["approve", "deny"]},
                "note": {"type": "string", "maxLength": 300},
                "until": {"type": "string", "description": "Approve only: a shorter end, HH:MM today in school time or ISO 8601"},
            },
        },
        "StandingPermission": {
            "type": "object",
            "required": ["id", "person", "area_ids", "starts_on", "ends_on", "reason", "granted_by"],
            "properties": {
                "id": {"type": "integer"},
                "person": _person,
                "personal_device_id": {"type": ["integer", "null"]},
                "area_ids": {"type": "array", "items": {"type": "integer"}, "description": "Empty: every area whose rule allows it"},
                "starts_on": {"type": "string", "format": "date"},
                "ends_on": {"type": "string", "format": "date"},
                "reason": {"type": "string"},
                "granted_by": _person,
                "ended_at": _nullable_time,
            },
        },
        "StandingPermissionInput": {
            "type": "object",
            "additionalProperties": False,
            "required": ["person_id", "starts_on", "ends_on", "reason"],
            "properties": {
                "person_id": ID_SCHEMA,
                "personal_device_id": {**ID_SCHEMA, "type": ["integer", "null"]},
                "area_ids": {"type": "array", "items": ID_SCHEMA, "maxItems": 500},
                "starts_on": {"type": "string", "format": "date"},
                "ends_on": {"type": "string", "format": "date"},
                "reason": {"type": "string", "maxLength": 200},
            },
        },
    },
)
