"""API shapes, defined once: each request body and response is a pydantic model.

The OpenAPI component schemas are generated from these models (``openapi.register_model``), request
bodies are validated by them (``read_body``) and responses are serialised through them (``reply``), so
the description, the checks and the answers cannot drift apart.

Bodies check the shape of what was sent: JSON types, required fields, no unknown fields, ids in range
(``app.ids``), dates, lengths, choices from a list and simple forms (``text``, ``choice``). So the
description promises exactly what the checks accept: a body valid by the description is refused only by
a school rule no JSON Schema can say (an IMEI's check digit, a device that is not yours, a request
already waiting), and those refusals are listed by name in tests/fuzz_rules.py. The services keep every
rule too: they share them with the forms and word their refusals for people.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar

from flask import request
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from app.ids import MAX_ID
from app.services.errors import ValidationFailed


class Message:
    """The one message a field answers with, whatever was wrong with its value (not its absence)."""

    def __init__(self, text: str) -> None:
        self.text = text


class Refusal:
    """The message for a value outside a field's form (its pattern or least length), when the generic one will not do."""

    def __init__(self, text: str) -> None:
        self.text = text


def documented(**schema: Any) -> dict:
    """Field arguments that add words to the description (a format); constraints go through ``text`` and ``choice``."""
    return {"json_schema_extra": schema}


# Text that must hold something other than spaces (the services refuse a blank make, name or reason).
NOT_BLANK = r"\S"
_CONSTRAINTS = ("min_length", "max_length", "pattern")


def no_default(schema: dict) -> None:
    schema.pop("default", None)


def text(default: Any = ..., *, required: bool = False, not_blank: bool = False, unset: bool = False, **constraints: Any) -> Any:
    """A text field whose constraints are both checked and described: max_length, min_length, pattern.

    ``required``: must be sent, and not blank. ``not_blank``: when sent, holds more than spaces. ``unset``: a
    change's field, which may be left out (the stored value is kept, so the description shows no default).
    """
    unknown = set(constraints) - {*_CONSTRAINTS, "description", "json_schema_extra"}
    if unknown:
        raise TypeError(f"text() does not take {sorted(unknown)}")
    if required or not_blank:
        constraints = {"min_length": 1, "pattern": NOT_BLANK, **constraints}
    if unset:
        return Field("", json_schema_extra=no_default, **constraints)
    return Field(... if required else default, **constraints)


def choice(*values: str) -> Any:
    """The type of a text field that must be one of ``values`` (a JSON Schema enum, checked as such)."""
    return Annotated[Literal[values], Message("Must be one of " + ", ".join(values) + ".")]


# Values in bodies ---------------------------------------------------------------------------------------

ID_MESSAGE = f"Must be a whole number from 1 to {MAX_ID}."
ID_LIST_LIMIT = 500
ID_LIST_MESSAGE = f"Must be a list of at most {ID_LIST_LIMIT} ids, each a whole number from 1 to {MAX_ID}."


def _whole_number(value: object) -> object:
    """A JSON number with no fraction (``12.0``) is the integer 12: JSON Schema's "integer" says so, and a
    client's JSON library may write it so. ``12.5``, a bool or a string stays what it is, and is refused."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


# An id in a body: a JSON integer (not a bool, a fraction or a string) that fits every id column.
Id = Annotated[int, Strict(), Field(ge=1, le=MAX_ID), BeforeValidator(_whole_number), Message(ID_MESSAGE)]
OptionalId = Annotated[Id | None, Message(ID_MESSAGE)]
IdList = Annotated[list[Id], Field(max_length=ID_LIST_LIMIT), Message(ID_LIST_MESSAGE)]
Text = Annotated[str, Strict(), Message("Must be a string.")]
Flag = Annotated[bool, Strict(), Message("Must be true or false.")]


def _date_from_text(example: str):
    def parse(value: object) -> date:
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise PydanticCustomError("school_date", "Use a date like {example}.", {"example": example})

    return BeforeValidator(parse)


def school_date(example: str) -> tuple[object, ...]:
    """A date sent as text (YYYY-MM-DD); anything else is refused with an example.

    The rules for ``Annotated[date, *school_date(example)]`` (a type checker takes no call as a type).
    """
    return _date_from_text(example), WithJsonSchema({"type": "string", "format": "date"}), Message(f"Use a date like {example}.")


class Body(BaseModel):
    """A request body: exactly these fields, each of exactly its JSON type."""

    # Python's regular expressions, as the services and hypothesis use: \\S means the same everywhere.
    model_config = ConfigDict(extra="forbid", strict=True, regex_engine="python-re")


# Values in responses -------------------------------------------------------------------------------------


def _iso(value: datetime | date) -> str:
    return value.isoformat()


# Times and dates answer as Python writes them (2026-11-25T09:00:00+00:00), as they always have.
Timestamp = Annotated[datetime, PlainSerializer(_iso, return_type=str), WithJsonSchema({"type": "string", "format": "date-time"})]
OptionalTimestamp = Annotated[
    datetime | None,
    PlainSerializer(lambda v: v.isoformat() if v else None, return_type=str | None),
    WithJsonSchema({"type": ["string", "null"], "format": "date-time"}),
]
Day = Annotated[date, PlainSerializer(_iso, return_type=str), WithJsonSchema({"type": "string", "format": "date"})]


class Shape(BaseModel):
    """A response: built from domain objects, answered through ``reply``."""

    model_config = ConfigDict(from_attributes=False)


class PersonRef(Shape):
    """Someone named in an answer."""

    id: int
    name: str

    @classmethod
    def of(cls, user) -> PersonRef:
        return cls(id=user.id, name=user.display_name)

    @classmethod
    def maybe(cls, user) -> PersonRef | None:
        return cls.of(user) if user is not None else None


def reply(shape: BaseModel, status: int = 200):
    """Answer with a response model, serialised by its own definition.

    A field the answer was built without (an admin-only poster URL, a report before closing) is left out,
    not sent as its default: every ``of`` constructor passes each field it answers with.
    """
    return shape.model_dump(mode="json", exclude_unset=True), status


# Reading bodies ---------------------------------------------------------------------------------------------

_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_MISSING = "This is required."


_CONSTRAINT_ERRORS = {"string_too_short", "string_pattern_mismatch"}


def _constraint_message(field, error: dict) -> str | None:
    """The message for a value of the right type outside the field's constraints, or None for a type error."""
    kind = error["type"]
    if kind == "string_too_long":
        return f"Use at most {error['ctx']['max_length']} characters."
    if kind in _CONSTRAINT_ERRORS:
        for item in field.metadata:
            if isinstance(item, Refusal):
                return item.text
        if kind == "string_too_short" or error["ctx"].get("pattern") == NOT_BLANK:
            return "Must not be empty or only spaces."
        return "Not in the expected form."
    return None


def _field_message(model: type[BaseModel], loc: tuple, error_type: str, error: dict | None = None) -> tuple[str, str]:
    """The field to name and the message for one pydantic error, from the field's own declaration."""
    name = str(loc[0]) if loc else "body"
    field = model.model_fields.get(name) if loc else None
    if field is None:
        return "body", "Expected a JSON object."
    nested = field.annotation
    if len(loc) > 1 and isinstance(loc[1], str) and isinstance(nested, type) and issubclass(nested, BaseModel):
        return _field_message(nested, loc[1:], error_type, error)
    if error_type == "missing":
        return name, _MISSING
    if error is not None and len(loc) == 1 and (constrained := _constraint_message(field, error)):
        return name, constrained
    for item in field.metadata:
        if isinstance(item, Message):
            return name, item.text
    if isinstance(nested, type) and issubclass(nested, BaseModel):
        return name, "Must be an object with " + " and ".join(nested.model_fields) + "."
    return name, "Not a valid value."


def problem_for(model: type[BaseModel], error: ValidationError) -> ValidationFailed:
    """Turn pydantic's errors into the problem Lanyard has always answered: 422, messages per field.

    Unknown fields are reported on their own (as before): naming one back only when it looks like a field
    name, because problem details never echo raw input.
    """
    unknown = [e["loc"] for e in error.errors() if e["type"] == "extra_forbidden"]
    if unknown:
        names = [str(loc[-1]) for loc in unknown]
        named = {name: ["Unknown field."] for name in sorted(names) if _FIELD_NAME.fullmatch(name)}
        if len(named) < len(names):
            named["body"] = ["Fields that are not part of this resource were sent."]
        return ValidationFailed("Unknown fields were sent.", named)
    fields: dict[str, list[str]] = {}
    for item in error.errors():
        name, message = _field_message(model, tuple(item["loc"]), item["type"], dict(item))
        if message not in fields.setdefault(name, []):
            fields[name].append(message)
    listed = ", ".join(fields)
    return ValidationFailed(f"Some fields need correcting: {listed}.", fields)


M = TypeVar("M", bound=BaseModel)


def read_body(model: type[M], *, optional: bool = False) -> M:
    """The request's JSON body as ``model``, or a 422 problem naming each field that does not fit."""
    if optional and not request.get_data():
        return model()
    if not request.is_json:
        raise ValidationFailed("Send a JSON object with Content-Type: application/json.", {"body": ["Expected JSON."]})
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", {"body": ["Expected a JSON object."]})
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise problem_for(model, error) from None
