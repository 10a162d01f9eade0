"""The OpenAPI 3.1 description, assembled from the paths each API module registers beside its routes."""

from __future__ import annotations

from flask import current_app

from app.access import public
from app.api import bp

_paths: dict[str, dict] = {}
_schemas: dict[str, dict] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        },
    }
}


def register_paths(paths: dict[str, dict], schemas: dict[str, dict] | None = None) -> None:
    _paths.update(paths)
    _schemas.update(schemas or {})


def openapi_document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lanyard API",
            "version": "1.0.0",
            "description": "Staff devices, classroom permission and school equipment. Errors are RFC 9457 "
            "problem details. Cookie sessions must send the X-CSRFToken header on every change.",
        },
        "servers": [{"url": f"{current_app.config['BASE_URL']}/api/v1"}],
        "paths": dict(sorted(_paths.items())),
        "components": {
            "schemas": _schemas,
            "responses": {
                "Problem": {
                    "description": "A problem",
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
            },
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": current_app.config["SESSION_COOKIE_NAME"]},
                "token": {"type": "http", "scheme": "bearer", "description": "A personal API token from Account > API tokens"},
            },
        },
        "security": [{"token": []}, {"session": []}],
    }


@bp.get("/openapi.json")
@public
def openapi_json():
    return openapi_document()
