"""The signed-in person and their data export."""

from __future__ import annotations

from flask_login import current_user, login_required

from app.api import bp
from app.api.openapi import register_paths
from app.extensions import db
from app.services.notifications import unread_count
from app.services.personal_data import export_person


def person_json(user) -> dict:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.display_name,
        "roles": sorted(r.value for r in user.roles),
        "active": user.is_active_account,
    }


@bp.get("/me")
@login_required
def me():
    return {**person_json(current_user), "unread_notices": unread_count(db.session, current_user)}


@bp.get("/me/export")
@login_required
def me_export():
    return export_person(db.session, current_user)


register_paths(
    {
        "/me": {
            "get": {
                "summary": "The signed-in person",
                "operationId": "getMe",
                "responses": {
                    "200": {"description": "The person", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Me"}}}},
                    "401": {"$ref": "#/components/responses/Problem"},
                },
            }
        },
        "/me/export": {
            "get": {
                "summary": "Everything Lanyard holds about the signed-in person",
                "operationId": "exportMe",
                "responses": {
                    "200": {"description": "The export", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "401": {"$ref": "#/components/responses/Problem"},
                },
            }
        },
    },
    {
        "Me": {
            "type": "object",
            "required": ["id", "email", "name", "roles", "active", "unread_notices"],
            "properties": {
                "id": {"type": "integer"},
                "email": {"type": "string"},
                "name": {"type": "string"},
                "roles": {"type": "array", "items": {"type": "string", "enum": ["staff", "approver", "office", "admin"]}},
                "active": {"type": "boolean"},
                "unread_notices": {"type": "integer"},
            },
        }
    },
)
