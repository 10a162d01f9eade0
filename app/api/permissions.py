"""Areas, permission requests (ask, decide, end, withdraw), standing permissions and the Now board."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from flask import current_app, request
from flask_login import current_user, login_required
from pydantic import Field

from app.api import bp
from app.api.openapi import json_content, register_paths, request_body
from app.api.shapes import (
    Body,
    Day,
    Flag,
    Id,
    IdList,
    OptionalId,
    OptionalTimestamp,
    PersonRef,
    Shape,
    Text,
    Timestamp,
    choice,
    no_default,
    read_body,
    reply,
    school_date,
    text,
)
from app.clock import utcnow
from app.extensions import db
from app.models import Area as AreaModel
from app.models import AreaRule, RequestReason, RequestStatus, Role
from app.models import PermissionRequest as PermissionRequestModel
from app.models import StandingPermission as StandingPermissionModel
from app.services import areas, permissions
from app.services.errors import Forbidden, ValidationFailed
from app.services.permission_lookups import require_request_exists

_REASONS = [r.value for r in RequestReason]
_RULES = [r.value for r in AreaRule]


class AreaInput(Body):
    """A new area: its name, and its rule (ask unless said)."""

    name: Text = text(required=True, max_length=120)
    rule: choice(*_RULES) = "ask"


class AreaChanges(Body):
    """A change to an area: the fields left out keep their values."""

    name: Text = text(unset=True, not_blank=True, max_length=120)
    rule: choice(*_RULES) = Field("ask", json_schema_extra=no_default)


class PermissionRequestInput(Body):
    area_id: Id
    device: Text = Field(
        description="A device option key, e.g. personal-12 (your device 12) or asset-5", pattern=r"^(personal|asset)-[0-9]{1,10}$"
    )
    reason: choice(*_REASONS)
    reason_other: Text = text("", max_length=200, description="Required with reason=other")
    duration: choice("end_of_lesson", "one_hour", "rest_of_day", "until")
    until: Text = Field("", description="With duration=until: HH:MM today in school time, or an ISO 8601 date-time")
    emergency: Flag = Field(
        False,
        description="An emergency that cannot wait: approved at once (to the end of the school day at most), the approvers "
        "and delegates alerted, reviewed within 24 hours. Area rules still apply.",
    )
    emergency_reason: Text = text(
        "", max_length=300, description="Required with emergency: what is happening, in a sentence (10 to 300 characters)"
    )


class Decision(Body):
    decision: choice("approve", "deny")
    note: Text = text("", max_length=300)
    until: Text = Field("", description="Approve only: a shorter end, HH:MM today in school time or ISO 8601")


class Review(Body):
    outcome: choice("justified", "not_justified")
    note: Text = text("", max_length=300, description="Required when not_justified")


class StandingPermissionInput(Body):
    person_id: Id
    personal_device_id: OptionalId = None
    area_ids: IdList = []  # noqa: RUF012 (pydantic copies a field's default for each instance)
    starts_on: Annotated[date, *school_date("2026-12-31")]
    ends_on: Annotated[date, *school_date("2026-12-31")]
    reason: Text = text(required=True, max_length=200)


class Area(Shape):
    id: int
    name: str
    rule: AreaRule
    rule_explanation: str
    poster_url: str = Field("", description="Admins only: the URL in the poster's QR code")

    @classmethod
    def of(cls, area: AreaModel, with_poster: bool = False) -> Area:
        shown = cls(id=area.id, name=area.name, rule=area.rule, rule_explanation=area.rule_explanation)
        if with_poster:
            shown.poster_url = areas.poster_url(current_app.config["BASE_URL"], area)
        return shown


class AreaList(Shape):
    items: list[Area]


class AreaRef(Shape):
    id: int
    name: str


class RequestDevice(Shape):
    label: str
    personal_device_id: int | None
    asset_id: int | None


class EmergencyReview(Shape):
    outcome: Literal["justified", "not_justified"]
    note: str
    reviewed_by: PersonRef
    reviewed_at: Timestamp


class PermissionRequest(Shape):
    id: int
    requester: PersonRef
    area: AreaRef
    device: RequestDevice
    reason: RequestReason
    reason_other: str
    wanted_until: Timestamp
    status: RequestStatus
    status_text: str = Field(description="The sentence the requester's page shows, in school time")
    decided_by: PersonRef | None
    decided_at: OptionalTimestamp
    decision_note: str
    approved_until: OptionalTimestamp
    standing_permission_id: int | None
    ended_at: OptionalTimestamp
    escalated_at: OptionalTimestamp
    created_at: Timestamp
    emergency: bool = Field(description="An emergency override: approved at once, to be reviewed within 24 hours")
    emergency_reason: str = Field(description="What was happening (empty for viewers other than the requester and approvers)")
    review: EmergencyReview | None
    review_escalated_at: OptionalTimestamp = Field(
        description="When the admins and delegates were told it was unreviewed after 24 hours"
    )

    @classmethod
    def of(cls, asked: PermissionRequestModel) -> PermissionRequest:
        # What was happening in an emergency is for the requester and the approvers, not the office's Now board.
        sees_reason = asked.requester_id == current_user.id or current_user.has_role(Role.APPROVER)
        review = None
        if asked.reviewed_at is not None:
            review = EmergencyReview(
                outcome=asked.review_outcome,
                note=asked.review_note,
                reviewed_by=PersonRef.of(asked.reviewed_by),
                reviewed_at=asked.reviewed_at,
            )
        return cls(
            id=asked.id,
            requester=PersonRef.of(asked.requester),
            area=AreaRef(id=asked.area.id, name=asked.area.name),
            device=RequestDevice(label=asked.device_label, personal_device_id=asked.personal_device_id, asset_id=asked.asset_id),
            reason=asked.reason,
            reason_other=asked.reason_other,
            wanted_until=asked.wanted_until,
            status=asked.status,
            status_text=permissions.describe_status(asked),
            decided_by=PersonRef.maybe(asked.decided_by),
            decided_at=asked.decided_at,
            decision_note=asked.decision_note,
            approved_until=asked.approved_until,
            standing_permission_id=asked.standing_permission_id,
            ended_at=asked.ended_at,
            escalated_at=asked.escalated_at,
            created_at=asked.created_at,
            emergency=asked.emergency,
            emergency_reason=asked.emergency_reason if sees_reason else "",
            review=review,
            review_escalated_at=asked.review_escalated_at,
        )


class PermissionRequestList(Shape):
    items: list[PermissionRequest]


class NowBoard(Shape):
    as_at: Timestamp
    items: list[PermissionRequest] = Field(description="Active permissions, soonest to end first")


class StandingPermission(Shape):
    id: int
    person: PersonRef
    personal_device_id: int | None
    area_ids: list[int] = Field(description="Empty: every area whose rule allows it")
    starts_on: Day
    ends_on: Day
    reason: str
    granted_by: PersonRef
    ended_at: OptionalTimestamp

    @classmethod
    def of(cls, standing: StandingPermissionModel) -> StandingPermission:
        return cls(
            id=standing.id,
            person=PersonRef.of(standing.person),
            personal_device_id=standing.personal_device_id,
            area_ids=[a.id for a in standing.areas],
            starts_on=standing.starts_on,
            ends_on=standing.ends_on,
            reason=standing.reason,
            granted_by=PersonRef.of(standing.granted_by),
            ended_at=standing.ended_at,
        )


class StandingPermissionList(Shape):
    items: list[StandingPermission]


def _commit_and(shape: Shape, status: int = 200):
    """Commit, then answer with a body built before the commit (so it need not be read back)."""
    body = reply(shape, status)
    db.session.commit()
    return body


def _require(*roles: Role) -> None:
    if not current_user.has_role(*roles):
        raise Forbidden("Your role does not allow this.")


# Areas ------------------------------------------------------------------------------------------------


@bp.get("/areas")
@login_required
def list_areas():
    admin = current_user.has_role(Role.ADMIN)
    return reply(AreaList(items=[Area.of(a, with_poster=admin) for a in areas.list_areas(db.session)]))


@bp.post("/areas")
@login_required
def create_area():
    _require(Role.ADMIN)
    body = read_body(AreaInput)
    area = areas.create_area(db.session, current_user, name=body.name, rule=body.rule)
    db.session.commit()
    return reply(Area.of(area, with_poster=True), 201)


@bp.patch("/areas/<int:area_id>")
@login_required
def update_area(area_id: int):
    _require(Role.ADMIN)
    area = areas.get_area(db.session, area_id)
    changes = {"name": area.name, "rule": area.rule, **read_body(AreaChanges).model_dump(exclude_unset=True)}
    areas.update_area(db.session, current_user, area, **changes)
    db.session.commit()
    return reply(Area.of(area, with_poster=True))


@bp.post("/areas/<int:area_id>/rotate-poster")
@login_required
def rotate_area_poster(area_id: int):
    _require(Role.ADMIN)
    area = areas.rotate_poster(db.session, current_user, areas.get_area(db.session, area_id))
    db.session.commit()
    return reply(Area.of(area, with_poster=True))


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
    return reply(PermissionRequestList(items=[PermissionRequest.of(r) for r in found]))


@bp.post("/permission-requests")
@login_required
def create_permission_request():
    body = read_body(PermissionRequestInput)
    area = areas.get_area(db.session, body.area_id)
    # An area-rule refusal is audited; the error handler commits it (keep_changes).
    asked = permissions.request_permission(
        db.session,
        current_user,
        area,
        device_key=body.device,
        reason=body.reason,
        reason_other=body.reason_other,
        duration=body.duration,
        until=body.until,
        emergency=body.emergency,
        emergency_reason=body.emergency_reason,
    )
    return _commit_and(PermissionRequest.of(asked), 201)


@bp.get("/permission-requests/<int:request_id>")
@login_required
def get_permission_request(request_id: int):
    return reply(PermissionRequest.of(permissions.visible_request(db.session, current_user, request_id)))


@bp.post("/permission-requests/<int:request_id>/decision")
@login_required
def decide_permission_request(request_id: int):
    _require(Role.APPROVER)
    require_request_exists(db.session, request_id)  # an approver sees every request; the service loads it once
    body = read_body(Decision)
    until = permissions.parse_until(body.until, utcnow()) if body.until.strip() else None
    decided = permissions.decide(db.session, current_user, request_id, body.decision, note=body.note, until=until)
    return _commit_and(PermissionRequest.of(decided))


@bp.post("/permission-requests/<int:request_id>/review")
@login_required
def review_permission_request(request_id: int):
    _require(Role.APPROVER)
    require_request_exists(db.session, request_id)  # an approver sees every request; the service loads it once
    body = read_body(Review)
    reviewed = permissions.review_emergency(db.session, current_user, request_id, body.outcome, note=body.note)
    return _commit_and(PermissionRequest.of(reviewed))


@bp.post("/permission-requests/<int:request_id>/end")
@login_required
def end_permission_request(request_id: int):
    return _commit_and(PermissionRequest.of(permissions.end_permission(db.session, current_user, request_id)))


@bp.post("/permission-requests/<int:request_id>/withdraw")
@login_required
def withdraw_permission_request(request_id: int):
    return _commit_and(PermissionRequest.of(permissions.withdraw(db.session, current_user, request_id)))


# Standing permissions and Now -----------------------------------------------------------------------------


@bp.get("/standing-permissions")
@login_required
def list_standing_permissions():
    if current_user.has_role(Role.APPROVER):
        found = permissions.standing_permissions(db.session, include_ended=request.args.get("ended") == "true")
    else:
        found = permissions.standing_permissions_of(db.session, current_user)
    return reply(StandingPermissionList(items=[StandingPermission.of(s) for s in found]))


@bp.post("/standing-permissions")
@login_required
def grant_standing_permission():
    _require(Role.APPROVER)
    body = read_body(StandingPermissionInput)
    standing = permissions.grant_standing_permission(db.session, current_user, **body.model_dump())
    db.session.commit()
    return reply(StandingPermission.of(standing), 201)


@bp.post("/standing-permissions/<int:standing_id>/end")
@login_required
def end_standing_permission(standing_id: int):
    _require(Role.APPROVER)
    standing = permissions.end_standing_permission(db.session, current_user, standing_id)
    db.session.commit()
    return reply(StandingPermission.of(standing))


@bp.get("/now")
@login_required
def now_board():
    _require(Role.APPROVER, Role.OFFICE)
    now = utcnow()
    return reply(NowBoard(as_at=now, items=[PermissionRequest.of(r) for r in permissions.active_permissions(db.session, now)]))


# OpenAPI ------------------------------------------------------------------------------------------------

_problem = {"$ref": "#/components/responses/Problem"}


def _op(
    summary: str,
    op_id: str,
    shape: type[Shape],
    ok: str = "200",
    *,
    body: type[Body] | None = None,
    params=None,
    errors=("401", "404"),
) -> dict:
    operation: dict = {
        "summary": summary,
        "operationId": op_id,
        "responses": {ok: json_content(shape, summary), **{code: _problem for code in errors}},
    }
    if params:
        operation["parameters"] = params
    if body:
        operation["requestBody"] = request_body(body)
    return operation


def _path_id(name: str) -> list[dict]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}]


_request_id = _path_id("request_id")

register_paths(
    {
        "/areas": {
            "get": {
                "summary": "Every area (admins also get each poster's URL)",
                "operationId": "listAreas",
                "responses": {"200": json_content(AreaList, "Areas"), "401": _problem},
            },
            "post": _op("Add an area (admin)", "createArea", Area, "201", body=AreaInput, errors=("401", "403", "422")),
        },
        "/areas/{area_id}": {
            "patch": _op(
                "Rename an area or change its rule (admin)",
                "updateArea",
                Area,
                body=AreaChanges,
                params=_path_id("area_id"),
                errors=("401", "403", "404", "422"),
            ),
        },
        "/areas/{area_id}/rotate-poster": {
            "post": _op(
                "Give an area a new poster token: old posters stop working (admin)",
                "rotateAreaPoster",
                Area,
                params=_path_id("area_id"),
                errors=("401", "403", "404"),
            ),
        },
        "/permission-requests": {
            "get": {
                "summary": "My requests, newest first; approvers may ask for scope=pending (oldest first)",
                "operationId": "listPermissionRequests",
                "parameters": [{"name": "scope", "in": "query", "schema": {"type": "string", "enum": ["mine", "pending"]}}],
                "responses": {
                    "200": json_content(PermissionRequestList, "Requests"),
                    "401": _problem,
                    "403": _problem,
                    "422": _problem,
                },
            },
            "post": _op(
                "Ask to take a device into an area; approved at once when a standing permission covers it, or as an emergency override (emergency with a reason). "
                "409 (already-asked) while the same person waits for a decision on the same device and area: request_id and request_url name that request. "
                "Approving a device in an area ends its approval elsewhere (one device, one place).",
                "createPermissionRequest",
                PermissionRequest,
                "201",
                body=PermissionRequestInput,
                errors=("401", "404", "409", "422"),
            ),
        },
        "/permission-requests/{request_id}": {
            "get": _op(
                "One request (its requester, or an approver)", "getPermissionRequest", PermissionRequest, params=_request_id
            ),
        },
        "/permission-requests/{request_id}/decision": {
            "post": _op(
                "Approve or deny a pending request (approvers; never your own). 409 names who decided first.",
                "decidePermissionRequest",
                PermissionRequest,
                body=Decision,
                params=_request_id,
                errors=("401", "403", "404", "409", "422"),
            ),
        },
        "/permission-requests/{request_id}/review": {
            "post": _op(
                "Review an emergency override once: justified or not_justified (a note is required then). Approvers; never your own. 409 names who reviewed first.",
                "reviewPermissionRequest",
                PermissionRequest,
                body=Review,
                params=_request_id,
                errors=("401", "403", "404", "409", "422"),
            ),
        },
        "/permission-requests/{request_id}/end": {
            "post": _op(
                "I've left the room: end an approved permission (requester)",
                "endPermissionRequest",
                PermissionRequest,
                params=_request_id,
                errors=("401", "404", "409"),
            ),
        },
        "/permission-requests/{request_id}/withdraw": {
            "post": _op(
                "Withdraw a pending request (requester)",
                "withdrawPermissionRequest",
                PermissionRequest,
                params=_request_id,
                errors=("401", "404", "409"),
            ),
        },
        "/standing-permissions": {
            "get": {
                "summary": "Current standing permissions (approvers: everyone's, ended=true for past ones too; others: their own)",
                "operationId": "listStandingPermissions",
                "parameters": [{"name": "ended", "in": "query", "schema": {"type": "string", "enum": ["true", "false"]}}],
                "responses": {"200": json_content(StandingPermissionList, "Standing permissions"), "401": _problem},
            },
            "post": _op(
                "Grant a standing permission (approvers)",
                "grantStandingPermission",
                StandingPermission,
                "201",
                body=StandingPermissionInput,
                errors=("401", "403", "422"),
            ),
        },
        "/standing-permissions/{standing_id}/end": {
            "post": _op(
                "End a standing permission early (approvers)",
                "endStandingPermission",
                StandingPermission,
                params=_path_id("standing_id"),
                errors=("401", "403", "404", "409"),
            ),
        },
        "/now": {
            "get": {
                "summary": "Who has which device in which area right now (approvers and office)",
                "operationId": "getNow",
                "responses": {
                    "200": json_content(NowBoard, "Active permissions, soonest to end first"),
                    "401": _problem,
                    "403": _problem,
                },
            }
        },
    }
)
