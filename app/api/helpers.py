"""Reading JSON bodies and answering with the right status."""

from __future__ import annotations

import re

from flask import request

from app.services.errors import ValidationFailed

_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def json_body(allowed: set[str]) -> dict:
    """The request's JSON object, refusing anything else with a problem naming the fields."""
    if not request.is_json:
        raise ValidationFailed("Send a JSON object with Content-Type: application/json.", {"body": ["Expected JSON."]})
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", {"body": ["Expected a JSON object."]})
    unknown = sorted(set(data) - allowed)
    if unknown:
        # Name a field back only when it looks like a field name: problem details never echo raw input.
        named = {name: ["Unknown field."] for name in unknown if _FIELD_NAME.fullmatch(name)}
        if len(named) < len(unknown):
            named["body"] = ["Fields that are not part of this resource were sent."]
        raise ValidationFailed("Unknown fields were sent.", named)
    return data


def text_field(data: dict, name: str, default: str = "") -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be a string.", {name: ["Must be a string."]})
    return value


def bool_field(data: dict, name: str, default: bool = False) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise ValidationFailed(f"{name} must be true or false.", {name: ["Must be true or false."]})
    return value
