"""Devices in the register: the owner's own, and every device for the office."""

from __future__ import annotations

from flask import request
from flask_login import current_user, login_required

from app.api import bp
from app.api.helpers import bool_field, json_body, text_field
from app.api.openapi import register_paths
from app.extensions import db
from app.models import PersonalDevice, Role
from app.services import devices
from app.services.errors import Forbidden, NotFound
from app.services.imei import last_four

DEVICE_FIELDS = {"kind", "make", "model", "description", "serial", "imei1", "imei2"}


def device_json(device: PersonalDevice) -> dict:
    """IMEIs in full: only the owner and the office ever reach this."""
    return {
        "id": device.id,
        "owner": {"id": device.owner.id, "name": device.owner.display_name},
        "kind": device.kind,
        "make": device.make,
        "model": device.model,
        "description": device.description,
        "serial": device.serial,
        "imei1": device.imei1,
        "imei2": device.imei2,
        "imei1_last4": last_four(device.imei1),
        "status": device.status,
        "reported_at": device.reported_at.isoformat() if device.reported_at else None,
        "crime_reference": device.crime_reference,
        "created_at": device.created_at.isoformat(),
        "updated_at": device.updated_at.isoformat(),
    }


def _visible_device(device_id: int) -> PersonalDevice:
    device = db.session.get(PersonalDevice, device_id)
    if device is None or (device.owner_id != current_user.id and not current_user.has_role(Role.OFFICE)):
        raise NotFound("There is no such device.")
    return device


def _details(data: dict, base: PersonalDevice | None = None) -> devices.DeviceDetails:
    def field(name: str, current: str) -> str:
        return text_field(data, name, current)

    return devices.DeviceDetails(
        kind=field("kind", base.kind if base else "smartphone"),
        make=field("make", base.make if base else ""),
        model=field("model", base.model if base else ""),
        description=field("description", base.description if base else ""),
        serial=field("serial", base.serial if base else ""),
        imei1=field("imei1", (base.imei1 or "") if base else ""),
        imei2=field("imei2", (base.imei2 or "") if base else ""),
    )


def _commit_and(device: PersonalDevice, status: int = 200):
    db.session.commit()
    return device_json(device), status


@bp.get("/devices")
@login_required
def list_devices():
    scope = request.args.get("scope", "mine")
    if scope == "all":
        if not current_user.has_role(Role.OFFICE):
            raise Forbidden("Only the office can list every device.")
        found = devices.search_register(db.session, request.args.get("q", "")[:100], limit=200)
    else:
        found = devices.devices_of(db.session, current_user, include_retired=request.args.get("retired") == "true")
    return {"items": [device_json(d) for d in found]}


@bp.post("/devices")
@login_required
def create_device():
    data = json_body(DEVICE_FIELDS)
    device = devices.register_device(db.session, current_user, _details(data))
    return _commit_and(device, 201)


@bp.get("/devices/<int:device_id>")
@login_required
def get_device(device_id: int):
    return device_json(_visible_device(device_id))


@bp.patch("/devices/<int:device_id>")
@login_required
def update_device(device_id: int):
    device = devices.owned_device(db.session, current_user, device_id)
    data = json_body(DEVICE_FIELDS)
    devices.update_device(db.session, current_user, device, _details(data, device))
    return _commit_and(device)


@bp.post("/devices/<int:device_id>/retire")
@login_required
def retire_device(device_id: int):
    device = devices.owned_device(db.session, current_user, device_id)
    devices.retire_device(db.session, current_user, device)
    return _commit_and(device)


@bp.post("/devices/<int:device_id>/report-lost")
@login_required
def report_lost(device_id: int):
    device = devices.owned_device(db.session, current_user, device_id)
    data = json_body({"stolen", "crime_reference", "notes"})
    devices.report_lost(
        db.session,
        current_user,
        device,
        stolen=bool_field(data, "stolen"),
        crime_reference=text_field(data, "crime_reference"),
        notes=text_field(data, "notes"),
    )
    return _commit_and(device)


@bp.post("/devices/<int:device_id>/found")
@login_required
def found(device_id: int):
    device = devices.owned_device(db.session, current_user, device_id)
    devices.mark_found(db.session, current_user, device)
    return _commit_and(device)


_problem = {"$ref": "#/components/responses/Problem"}
_device = {"application/json": {"schema": {"$ref": "#/components/schemas/Device"}}}
_id_param = [{"name": "device_id", "in": "path", "required": True, "schema": {"type": "integer"}}]


def _op(summary: str, op_id: str, ok: str = "200", body: str | None = None, params=None, errors=("401", "404")) -> dict:
    operation: dict = {
        "summary": summary,
        "operationId": op_id,
        "responses": {ok: {"description": "The device", "content": _device}, **{code: _problem for code in errors}},
    }
    if params:
        operation["parameters"] = params
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}}
    return operation


register_paths(
    {
        "/devices": {
            "get": {
                "summary": "My devices; the office may ask for every device with scope=all",
                "operationId": "listDevices",
                "parameters": [
                    {"name": "scope", "in": "query", "schema": {"type": "string", "enum": ["mine", "all"]}},
                    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 100}},
                    {"name": "retired", "in": "query", "schema": {"type": "string", "enum": ["true", "false"]}},
                ],
                "responses": {
                    "200": {
                        "description": "Devices",
                        "content": {"application/json": {"schema": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Device"}}}}}},
                    },
                    "401": _problem,
                    "403": _problem,
                },
            },
            "post": _op("Register a device", "createDevice", "201", "DeviceInput", errors=("401", "409", "422")),
        },
        "/devices/{device_id}": {
            "get": _op("One device (owner or office)", "getDevice", params=_id_param),
            "patch": _op("Change a device", "updateDevice", body="DeviceInput", params=_id_param, errors=("401", "404", "409", "422")),
        },
        "/devices/{device_id}/retire": {"post": _op("Retire a device", "retireDevice", params=_id_param)},
        "/devices/{device_id}/report-lost": {
            "post": _op("Report a device lost or stolen", "reportDeviceLost", body="LostReport", params=_id_param, errors=("401", "404", "409", "422"))
        },
        "/devices/{device_id}/found": {"post": _op("Mark a lost device found", "markDeviceFound", params=_id_param, errors=("401", "404", "409"))},
    },
    {
        "Device": {
            "type": "object",
            "required": ["id", "owner", "kind", "make", "model", "status"],
            "properties": {
                "id": {"type": "integer"},
                "owner": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
                "kind": {"type": "string", "enum": ["smartphone", "smartwatch", "tablet", "camera", "other_recording"]},
                "make": {"type": "string"},
                "model": {"type": "string"},
                "description": {"type": "string"},
                "serial": {"type": "string"},
                "imei1": {"type": ["string", "null"]},
                "imei2": {"type": ["string", "null"]},
                "imei1_last4": {"type": "string"},
                "status": {"type": "string", "enum": ["active", "lost", "stolen", "retired"]},
                "reported_at": {"type": ["string", "null"], "format": "date-time"},
                "crime_reference": {"type": "string"},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
            },
        },
        "DeviceInput": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "kind": {"type": "string", "enum": ["smartphone", "smartwatch", "tablet", "camera", "other_recording"]},
                "make": {"type": "string", "maxLength": 60},
                "model": {"type": "string", "maxLength": 60},
                "description": {"type": "string", "maxLength": 200},
                "serial": {"type": "string", "maxLength": 60},
                "imei1": {"type": "string", "description": "15 digits (spaces and dashes ignored) or a 16-digit IMEISV"},
                "imei2": {"type": "string"},
            },
        },
        "LostReport": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "stolen": {"type": "boolean"},
                "crime_reference": {"type": "string", "maxLength": 60},
                "notes": {"type": "string", "maxLength": 500},
            },
        },
    },
)
