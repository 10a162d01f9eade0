"""The SCIM 2.0 endpoint (/scim/v2) an identity provider calls with a provisioning token.

Every call needs ``Authorization: Bearer <provisioning token>``; nothing else is accepted (a signed-in
cookie included), so the blueprint is exempt from CSRF: no browser form can carry the token. Answers are
``application/scim+json``; errors use SCIM's error message. Every change is audited with the token as
its origin (``scim.*`` events naming the token), beside the account events the change itself records.
"""

from __future__ import annotations

import json
import re

from flask import Blueprint, Response, current_app, g, request
from pydantic import ValidationError
from scim2_models import (
    Context,
    Error,
    Group,
    Meta,
    PatchOp,
    ResourceType,
    ResponseParameters,
    SCIMException,
)
from werkzeug.exceptions import HTTPException

from app.clock import utcnow
from app.extensions import csrf, db
from app.models import Role
from app.models import User as Person
from app.scim.resources import (
    GROUP_NAMES,
    MAX_RESULTS,
    LanyardUser,
    ScimUser,
    group_resource,
    role_for_group,
    service_provider_config,
    staff_record,
    user_resource,
    user_schema,
)
from app.services import accounts, provisioning, scim_people
from app.services.audit import record_audit_event
from app.services.errors import Conflict, DomainError, NotFound, ValidationFailed

bp = Blueprint("scim", __name__, url_prefix="/scim/v2")
csrf.exempt(bp)
SCIM_JSON = "application/scim+json"
MAX_BODY = 256 * 1024
_EQ_FILTER = re.compile(r'^\s*([A-Za-z.:\[\] ]+?)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)


def _base() -> str:
    return f"{current_app.config['BASE_URL']}/scim/v2"


def _answer(payload: dict, status: int = 200, location: str | None = None) -> Response:
    response = Response(json.dumps(payload), status=status, mimetype=SCIM_JSON)
    if location:
        response.headers["Location"] = location
    return response


def scim_error(status: int, detail: str, scim_type: str | None = None) -> Response:
    return _answer(Error(status=status, scim_type=scim_type, detail=detail).model_dump(), status)


# Authentication and errors -------------------------------------------------------------------------


@bp.before_request
def _authenticate():
    header = request.headers.get("Authorization", "")
    secret = header[7:].strip() if header[:7].lower() == "bearer " else None
    token = provisioning.scim_token_for(db.session, secret, note_use=request.method not in ("GET", "HEAD"))
    if token is None:
        db.session.rollback()
        response = scim_error(
            401, "Send 'Authorization: Bearer <token>' with a live provisioning token from Lanyard (Staff > Provisioning)."
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="Lanyard SCIM"'
        return response
    if request.content_length and request.content_length > MAX_BODY:
        return scim_error(413, f"Send at most {MAX_BODY // 1024} KB in one request.", None)
    g.scim_token = token
    return None


@bp.errorhandler(SCIMException)
def _scim_exception(error: SCIMException):
    db.session.rollback()
    return _answer(error.to_error().model_dump(), int(error.status))


@bp.errorhandler(ValidationError)
def _invalid_payload(error: ValidationError):
    db.session.rollback()
    fields = sorted({".".join(str(part) for part in item["loc"]) for item in error.errors()})[:10]
    return scim_error(
        400, "The request body is not a valid SCIM resource" + (f" ({', '.join(fields)})." if fields else "."), "invalidSyntax"
    )


@bp.errorhandler(DomainError)
def _domain_error(error: DomainError):
    db.session.rollback()
    if isinstance(error, NotFound):
        return scim_error(404, error.message)
    if isinstance(error, Conflict):
        return scim_error(409, error.message, "uniqueness")
    if isinstance(error, ValidationFailed):
        detail = " ".join(f"{field}: {' '.join(messages)}" for field, messages in error.field_errors.items()) or error.message
        return scim_error(400, detail, "invalidValue")
    return scim_error(403, error.message)


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    db.session.rollback()
    return scim_error(error.code or 400, error.description or "That request cannot be answered.")


def _body() -> dict:
    data = request.get_json(silent=True, force=True)
    if not isinstance(data, dict):
        raise SCIMExceptionSyntax()
    return data


class SCIMExceptionSyntax(SCIMException):
    status = 400
    scim_type = "invalidSyntax"

    def __init__(self) -> None:
        super().__init__(detail="Send a JSON object (Content-Type: application/scim+json).")


def _audit(action: str, subject_type: str, subject_id: object, details: dict, user_id: int | None = None) -> None:
    record_audit_event(
        db.session,
        None,
        action,
        subject_type,
        subject_id,
        {"via": "scim", "scim_token": g.scim_token.id, **details},
        related={"user": user_id} if user_id else None,
    )


# Discovery -----------------------------------------------------------------------------------------


@bp.get("/ServiceProviderConfig")
def service_provider():
    return _answer(service_provider_config(_base()).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


def _resource_types() -> list[ResourceType]:
    user_type = ResourceType.from_resource(ScimUser)
    group_type = ResourceType.from_resource(Group)
    user_type.meta = Meta(resource_type="ResourceType", location=f"{_base()}/ResourceTypes/User")
    group_type.meta = Meta(resource_type="ResourceType", location=f"{_base()}/ResourceTypes/Group")
    return [user_type, group_type]


def _schemas():
    schemas = [user_schema(), LanyardUser.to_schema(), Group.to_schema()]
    for schema in schemas:
        schema.meta = {"resourceType": "Schema", "location": f"{_base()}/Schemas/{schema.id}"}
    return schemas


def _listing(resources: list, total: int | None = None, start: int = 1) -> dict:
    dumped = [r.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE) for r in resources]
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": len(resources) if total is None else total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": dumped,
    }


@bp.get("/ResourceTypes")
def resource_types():
    return _answer(_listing(_resource_types()))


@bp.get("/ResourceTypes/<name>")
def resource_type(name: str):
    found = next((r for r in _resource_types() if r.id == name), None)
    if found is None:
        return scim_error(404, "There is no such resource type.")
    return _answer(found.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


@bp.get("/Schemas")
def schemas():
    return _answer(_listing(_schemas()))


@bp.get("/Schemas/<path:schema_id>")
def schema(schema_id: str):
    found = next((s for s in _schemas() if s.id == schema_id), None)
    if found is None:
        return scim_error(404, "There is no such schema.")
    return _answer(found.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


# Users ---------------------------------------------------------------------------------------------


def _person(user_id: str) -> Person:
    return scim_people.visible_person(db.session, user_id)


def _paging(params) -> tuple[int, int]:
    def number(name: str, default: int) -> int:
        text = str(params.get(name, ""))
        return int(text) if text.lstrip("-").isdigit() and len(text) < 10 else default

    start = max(1, number("startIndex", 1))
    count = min(MAX_RESULTS, max(0, number("count", 100)))
    return start, count


def _selection(params) -> ResponseParameters | None:
    """The attributes / excludedAttributes the caller asked for (RFC 7644 §3.9), if any."""
    chosen = {key: params.get(key) for key in ("attributes", "excludedAttributes") if params.get(key)}
    return ResponseParameters[ScimUser].model_validate(chosen) if chosen else None


def _dump_user(person: Person, selection: ResponseParameters | None = None) -> dict:
    return user_resource(person, _base()).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=selection)


def _filtered_people(query, text: str):
    match = _EQ_FILTER.match(text)
    if not match:
        raise FilterNotSupported()
    attribute, value = match.group(1).strip().lower(), match.group(2).replace('\\"', '"').replace("\\\\", "\\")
    narrowed = scim_people.where_equal(query, attribute, value)
    if narrowed is None:
        raise FilterNotSupported()
    return narrowed


class FilterNotSupported(SCIMException):
    status = 400
    scim_type = "invalidFilter"

    def __init__(self) -> None:
        super().__init__(
            detail='Lanyard filters with one "eq" on userName, externalId, id, displayName or emails.value, like userName eq "a.patel@school.org.uk".'
        )


def _list_users(params) -> Response:
    query = scim_people.visible_people()
    if text := str(params.get("filter") or "").strip():
        query = _filtered_people(query, text[:500])
    start, count = _paging(params)
    selection = _selection(params)
    total, people = scim_people.page_of_people(db.session, query, start, count)
    payload = _listing([], total, start)
    payload["Resources"] = [_dump_user(person, selection) for person in people]
    payload["itemsPerPage"] = len(people)
    return _answer(payload)


@bp.get("/Users")
def list_users():
    return _list_users(request.args)


@bp.post("/Users/.search")
@bp.post("/.search", endpoint="search_root")
def search_users():
    """The same query as GET /Users, sent as a SearchRequest body (RFC 7644 §3.4.3); at the root it finds Users only."""
    return _list_users(_body())


@bp.get("/Users/<user_id>")
def get_user(user_id: str):
    return _answer(_dump_user(_person(user_id), _selection(request.args)))


@bp.post("/Users")
def create_user():
    resource = ScimUser.model_validate(_body(), scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    record = staff_record(resource, replacing=False)
    existing = accounts.find_user_by_email(db.session, record.email)
    if existing is not None and existing.deprovisioned_at is not None and not existing.is_active_account:
        # The provisioning system deleted this person and now sends them again: bring the same account back.
        record.active = True if record.active is None else record.active
        changed = provisioning.update_person(db.session, None, existing, record, via="scim")
        existing.deprovisioned_at = None
        person = existing
        _audit("scim.user_restored", "user", person.id, {"fields": changed}, person.id)
    elif existing is not None:
        raise Conflict("A user with this userName already exists.")
    else:
        person = provisioning.create_person(db.session, None, record, via="scim")
        _audit("scim.user_created", "user", person.id, {}, person.id)
    db.session.commit()
    return _answer(_dump_user(person), 201, f"{_base()}/Users/{person.id}")


def _apply(person: Person, resource: ScimUser, operation: str) -> Response:
    record = staff_record(resource, replacing=True)
    changed = provisioning.update_person(db.session, None, person, record, via="scim")
    if changed:
        _audit("scim.user_changed", "user", person.id, {"operation": operation, "fields": changed}, person.id)
    db.session.commit()
    return _answer(_dump_user(person))


@bp.put("/Users/<user_id>")
def replace_user(user_id: str):
    person = _person(user_id)
    resource = ScimUser.model_validate(_body(), scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
    return _apply(person, resource, "replace")


@bp.patch("/Users/<user_id>")
def patch_user(user_id: str):
    person = _person(user_id)
    patch = PatchOp[ScimUser].model_validate(_body(), scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    resource = user_resource(person, _base())
    patch.patch(resource)
    return _apply(person, resource, "patch")


@bp.delete("/Users/<user_id>")
def delete_user(user_id: str):
    """Never deleted (the audit log keeps pointing at people): deactivated, and hidden from SCIM from now on."""
    person = _person(user_id)
    provisioning.update_person(
        db.session, None, person, provisioning.StaffRecord(email="", display_name="", active=False), via="scim"
    )
    person.deprovisioned_at = utcnow()
    _audit("scim.user_deleted", "user", person.id, {}, person.id)
    db.session.commit()
    return Response(status=204)


# Groups (one per role) -----------------------------------------------------------------------------


def _role(group_id: str) -> Role:
    role = role_for_group(group_id)
    if role is None:
        raise NotFound("There is no such group: Lanyard's groups are its roles (Staff, Approvers, Office, Admins, Governors).")
    return role


def _members(role: Role) -> list[Person]:
    return scim_people.role_members(db.session, role)


def _dump_group(role: Role) -> dict:
    excluded = {name.strip().lower() for name in request.args.get("excludedAttributes", "").split(",")}
    members = [] if "members" in excluded else _members(role)
    dumped = group_resource(role, members, _base()).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    if "members" in excluded:
        dumped.pop("members", None)
    return dumped


@bp.get("/Groups")
def list_groups():
    roles = list(GROUP_NAMES)
    if text := request.args.get("filter", "").strip():
        match = _EQ_FILTER.match(text[:500])
        if not match or match.group(1).strip().lower() not in ("displayname", "id"):
            raise FilterNotSupported()
        role = role_for_group(match.group(2))
        roles = [role] if role is not None else []
    start, count = _paging(request.args)
    page = roles[start - 1 : start - 1 + count]
    payload = _listing([], len(roles), start)
    payload["Resources"] = [_dump_group(role) for role in page]
    payload["itemsPerPage"] = len(page)
    return _answer(payload)


@bp.get("/Groups/<group_id>")
def get_group(group_id: str):
    return _answer(_dump_group(_role(group_id)))


@bp.patch("/Groups/<group_id>")
def patch_group(group_id: str):
    """Members added or removed give or take the role; nothing else about a group can change."""
    role = _role(group_id)
    patch = PatchOp[Group].model_validate(_body(), scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    before = group_resource(role, _members(role), _base())
    after = before.model_copy(deep=True)
    patch.patch(after)
    if after.display_name != before.display_name:
        return scim_error(400, "Lanyard's group names are fixed: they are its roles.", "mutability")
    had = {member.value or "" for member in before.members or []}
    has = {member.value or "" for member in after.members or []}
    changes = [(user_id, True) for user_id in sorted(has - had)] + [(user_id, False) for user_id in sorted(had - has)]
    for user_id, member in changes:
        person = _person(user_id or "")
        if provisioning.set_role_members(db.session, role, person, member, via="scim"):
            _audit(
                "scim.group_member_added" if member else "scim.group_member_removed",
                "user",
                person.id,
                {"group": role.value},
                person.id,
            )
    db.session.commit()
    if request.args.get("excludedAttributes") is None and not changes:
        return Response(status=204)
    return _answer(_dump_group(role))


@bp.route("/Groups", methods=["POST"])
def create_group():
    return scim_error(
        403,
        "Lanyard's groups are its five roles (Staff, Approvers, Office, Admins, Governors); other groups cannot be made. Map your groups to these.",
        "mutability",
    )


@bp.route("/Groups/<group_id>", methods=["PUT", "DELETE"])
def change_group(group_id: str):
    _role(group_id)
    return scim_error(
        403, "Lanyard's groups are its roles: change their members with PATCH; they cannot be replaced or deleted.", "mutability"
    )


@bp.route("/<path:unknown>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown_endpoint(unknown: str):
    if unknown.partition("/")[0] in ("ServiceProviderConfig", "ResourceTypes", "Schemas"):
        return scim_error(405, "The discovery endpoints are read-only: use GET.")
    return scim_error(404, "There is no such SCIM endpoint here.")
