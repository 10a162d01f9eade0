"""Reading JSON bodies and answering with the right status."""

from __future__ import annotations

import re

from flask import request

from app.ids import MAX_ID, is_id
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


ID_MESSAGE = f"Must be a whole number from 1 to {MAX_ID}."
# The OpenAPI schema of an id sent in a body: the same bounds as id_field checks.
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def id_field(data: dict, name: str, *, required: bool = True) -> int | None:
    """An id from the body, range-checked like ids in URLs; None only when it may be left out."""
    value = data.get(name)
    if value is None and not required:
        return None
    if not is_id(value):
        raise ValidationFailed(f"{name} must be an id.", {name: [ID_MESSAGE]})
    return value


def id_list_field(data: dict, name: str, *, max_items: int = 500) -> list[int]:
    """A list of ids (empty when left out), each range-checked."""
    value = data.get(name, [])
    if not isinstance(value, list) or len(value) > max_items or not all(is_id(item) for item in value):
        raise ValidationFailed(f"{name} must be a list of ids.", {name: [f"Must be a list of at most {max_items} ids, each a whole number from 1 to {MAX_ID}."]})
    return value
