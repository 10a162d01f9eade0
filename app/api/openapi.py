"""The OpenAPI 3.1 description, assembled from the paths each API module registers beside its routes."""

from __future__ import annotations

import re
from datetime import date

from flask import current_app, request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonSchemaMode

from app.access import public
from app.api import bp

_paths: dict[str, dict] = {}
_models: dict[str, tuple[type[BaseModel], JsonSchemaMode]] = {}


class Problem(BaseModel):
    """RFC 9457 problem details"""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str = ""
    errors: dict[str, list[str]] = {}
    request_id: int | None = Field(None, description="already-asked: the request still waiting for a decision")
    request_url: str | None = Field(None, description="already-asked: its page")
    device_id: int | None = Field(None, description="conflict on registering: your own device that already has this IMEI")


def register_model(model: type[BaseModel], mode: JsonSchemaMode = "serialization") -> str:
    """Put a pydantic model among the component schemas; ``mode`` is validation for request bodies."""
    known = _models.get(model.__name__)
    if known is not None and known[0] is not model:
        raise ValueError(f"Two API shapes are called {model.__name__}")
    _models[model.__name__] = (model, mode)
    return f"#/components/schemas/{model.__name__}"


def json_content(model: type[BaseModel], description: str) -> dict:
    """A response that answers with ``model``."""
    return {"description": description, "content": {"application/json": {"schema": {"$ref": register_model(model)}}}}


def request_body(model: type[BaseModel], required: bool = True) -> dict:
    """A request body read with ``shapes.read_body(model)``."""
    return {"required": required, "content": {"application/json": {"schema": {"$ref": register_model(model, "validation")}}}}


def component_schemas() -> dict[str, dict]:
    """Every component schema, generated from the models (nested ones included, once each)."""
    schemas: dict[str, dict] = {}
    for model, mode in _models.values():
        schema = model.model_json_schema(ref_template=REF_TEMPLATE, mode=mode)
        for name, nested in schema.pop("$defs", {}).items():
            if schemas.setdefault(name, nested) != nested:
                raise ValueError(f"Two API shapes are called {name}")
        if schemas.setdefault(model.__name__, schema) != schema:
            raise ValueError(f"Two API shapes are called {model.__name__}")
    return dict(sorted(schemas.items()))


REF_TEMPLATE = "#/components/schemas/{model}"
register_model(Problem)


def register_paths(paths: dict[str, dict]) -> None:
    """Describe routes; their bodies and answers name models through ``request_body`` and ``json_content``."""
    _paths.update(paths)


def _with_common_responses(paths: dict) -> dict:
    """Every operation may answer 400 (malformed request) with a problem; say so once, here."""
    described = {}
    for path, item in paths.items():
        described[path] = {
            method: {**operation, "responses": {"400": {"$ref": "#/components/responses/Problem"}, **operation["responses"]}}
            for method, operation in item.items()
        }
    return described


def operation_for(rule: str, method: str) -> dict | None:
    path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.removeprefix("/api/v1"))
    return _paths.get(path, {}).get(method.lower())


def _query_problem(schema: dict, value: str) -> str | None:
    kind = schema.get("type", "string")
    if kind == "integer":
        if not re.fullmatch(r"-?[0-9]{1,12}", value):
            return "must be a whole number"
        number = int(value)
        if "minimum" in schema and number < schema["minimum"]:
            return f"must be at least {schema['minimum']}"
        if "maximum" in schema and number > schema["maximum"]:
            return f"must be at most {schema['maximum']}"
        return None
    if "enum" in schema and value not in schema["enum"]:
        return "must be one of " + ", ".join(str(v) for v in schema["enum"])
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return f"must be at most {schema['maxLength']} characters"
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return "is not in the expected form"
    if schema.get("format") == "date":
        try:
            date.fromisoformat(value)
        except ValueError:
            return "must be a date like 2026-11-25"
    return None


def check_query(rule: str, method: str, args) -> dict[str, list[str]]:
    """Hold a request's query string to its operation's description: the server does what it says."""
    operation = operation_for(rule, method)
    if operation is None:
        return {}
    errors = {}
    for parameter in operation.get("parameters", []):
        if parameter.get("in") != "query" or parameter["name"] not in args:
            continue
        problem = _query_problem(parameter.get("schema", {}), args[parameter["name"]])
        if problem:
            errors[parameter["name"]] = [f"{parameter['name']} {problem}."]
    return errors


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
        "paths": _with_common_responses(dict(sorted(_paths.items()))),
        "components": {
            "schemas": component_schemas(),
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


@bp.before_request
def hold_queries_to_the_description():
    if request.url_rule is None:
        return None
    errors = check_query(request.url_rule.rule, request.method, request.args)
    if errors:
        from app.services.errors import MalformedRequest

        raise MalformedRequest("Some query parameters are not valid.", errors)
    return None
