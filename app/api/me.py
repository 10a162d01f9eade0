"""The signed-in person and their data export."""

from __future__ import annotations

from typing import Any

from flask_login import current_user, login_required
from pydantic import RootModel

from app.api import bp
from app.api.openapi import json_content, register_paths
from app.api.shapes import Shape, reply
from app.extensions import db
from app.models import Role
from app.read_audit import record_read
from app.services.home import unread_count
from app.services.personal_data import export_person


class Me(Shape):
    id: int
    email: str
    name: str
    roles: list[Role]
    active: bool
    unread_notices: int


class PersonalDataExport(RootModel[dict[str, Any]]):
    """Everything Lanyard holds about a person, section by section (see app.services.personal_data)."""


@bp.get("/me")
@login_required
def me():
    me = Me(
        id=current_user.id,
        email=current_user.email,
        name=current_user.display_name,
        roles=sorted(r.value for r in current_user.roles),
        active=current_user.is_active_account,
        unread_notices=unread_count(db.session, current_user),
    )
    return reply(me)


@bp.get("/me/export")
@login_required
def me_export():
    record_read("personal_data.downloaded", "user", current_user.id, {"by": "self", "via": "api"})
    return reply(PersonalDataExport(export_person(db.session, current_user)))


register_paths(
    {
        "/me": {
            "get": {
                "summary": "The signed-in person",
                "operationId": "getMe",
                "responses": {"200": json_content(Me, "The person"), "401": {"$ref": "#/components/responses/Problem"}},
            }
        },
        "/me/export": {
            "get": {
                "summary": "Everything Lanyard holds about the signed-in person",
                "operationId": "exportMe",
                "responses": {
                    "200": json_content(PersonalDataExport, "The export"),
                    "401": {"$ref": "#/components/responses/Problem"},
                },
            }
        },
    }
)
