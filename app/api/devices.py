"""Devices in the register: the owner's own, and every device for the office."""

from __future__ import annotations

from flask import request
from flask_login import current_user, login_required
from pydantic import Field

from app.api import bp
from app.api.openapi import json_content, register_paths, request_body
from app.api.shapes import (
    Body,
    Flag,
    OptionalTimestamp,
    PersonRef,
    Shape,
    Text,
    Timestamp,
    choice,
    no_default,
    read_body,
    reply,
    text,
)
from app.extensions import db
from app.models import DeviceKind, DeviceStatus, PersonalDevice, Role
from app.read_audit import record_read, search_details
from app.services import devices
from app.services.errors import Forbidden
from app.services.imei import last_four

_KINDS = [k.value for k in DeviceKind]


_IMEI = "15 digits (spaces and dashes ignored) or a 16-digit IMEISV; a smartphone needs IMEI 1"


class DeviceInput(Body):
    """A device to register: its make and model are required."""

    kind: choice(*_KINDS) = "smartphone"
    make: Text = text(required=True, max_length=60)
    model: Text = text(required=True, max_length=60)
    description: Text = text("", max_length=200)
    serial: Text = text("", max_length=60)
    imei1: Text = Field("", description=_IMEI)
    imei2: Text = ""


class DeviceChanges(Body):
    """A change to a device: the fields left out keep their values."""

    kind: choice(*_KINDS) = Field("smartphone", json_schema_extra=no_default)
    make: Text = text(unset=True, not_blank=True, max_length=60)
    model: Text = text(unset=True, not_blank=True, max_length=60)
    description: Text = text(unset=True, max_length=200)
    serial: Text = text(unset=True, max_length=60)
    imei1: Text = text(unset=True, description=_IMEI)
    imei2: Text = text(unset=True)


class LostReport(Body):
    stolen: Flag = False
    crime_reference: Text = text("", max_length=60)
    notes: Text = text("", max_length=500)


class Device(Shape):
    """A device with its IMEIs in full: only the owner and the office are ever answered with one."""

    id: int
    owner: PersonRef
    kind: DeviceKind
    make: str
    model: str
    description: str
    serial: str
    imei1: str | None
    imei2: str | None
    imei1_last4: str
    status: DeviceStatus
    reported_at: OptionalTimestamp
    crime_reference: str
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, device: PersonalDevice) -> Device:
        return cls(
            id=device.id,
            owner=PersonRef.of(device.owner),
            kind=device.kind,
            make=device.make,
            model=device.model,
            description=device.description,
            serial=device.serial,
            imei1=device.imei1,
            imei2=device.imei2,
            imei1_last4=last_four(device.imei1),
            status=device.status,
            reported_at=device.reported_at,
            crime_reference=device.crime_reference,
            created_at=device.created_at,
            updated_at=device.updated_at,
        )


class DeviceList(Shape):
    items: list[Device]


def _visible_device(device_id: int) -> PersonalDevice:
    return devices.visible_device(db.session, current_user, device_id)


def _details(body: DeviceInput | DeviceChanges, base: PersonalDevice | None = None) -> devices.DeviceDetails:
    if base is None:
        return devices.DeviceDetails(**body.model_dump())
    sent = body.model_dump(exclude_unset=True)
    current = {name: getattr(base, name) or "" for name in DeviceChanges.model_fields}
    return devices.DeviceDetails(**{**current, **sent})


def _commit_and(device: PersonalDevice, status: int = 200):
    db.session.commit()
    return reply(Device.of(device), status)


@bp.get("/devices")
@login_required
def list_devices():
    scope = request.args.get("scope", "mine")
    if scope == "all":
        if not current_user.has_role(Role.OFFICE):
            raise Forbidden("Only the office can list every device.")
        text = request.args.get("q", "")[:100]
        if text.strip():
            record_read("device.register_searched", details={**search_details(text), "via": "api"})
        found = devices.search_register(db.session, text, limit=200)
    else:
        found = devices.devices_of(db.session, current_user, include_retired=request.args.get("retired") == "true")
    return reply(DeviceList(items=[Device.of(d) for d in found]))


@bp.post("/devices")
@login_required
def create_device():
    device = devices.register_device(db.session, current_user, _details(read_body(DeviceInput)))
    return _commit_and(device, 201)


@bp.get("/devices/<int:device_id>")
@login_required
def get_device(device_id: int):
    return reply(Device.of(_visible_device(device_id)))


@bp.patch("/devices/<int:device_id>")
@login_required
def update_device(device_id: int):
    device = devices.owned_device(db.session, current_user, device_id)
    devices.update_device(db.session, current_user, device, _details(read_body(DeviceChanges), device))
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
    report = read_body(LostReport)
    devices.report_lost(
        db.session, current_user, device, stolen=report.stolen, crime_reference=report.crime_reference, notes=report.notes
    )
    return _commit_and(device)


@bp.post("/devices/<int:device_id>/found")
@login_required
def found(device_id: int):
    device = devices.owned_device(db.session, current_user, device_id)
    devices.mark_found(db.session, current_user, device)
    return _commit_and(device)


_problem = {"$ref": "#/components/responses/Problem"}
_id_param = [{"name": "device_id", "in": "path", "required": True, "schema": {"type": "integer"}}]


def _op(summary: str, op_id: str, ok: str = "200", body: type[Body] | None = None, params=None, errors=("401", "404")) -> dict:
    operation: dict = {
        "summary": summary,
        "operationId": op_id,
        "responses": {ok: json_content(Device, "The device"), **{code: _problem for code in errors}},
    }
    if params:
        operation["parameters"] = params
    if body:
        operation["requestBody"] = request_body(body)
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
                "responses": {"200": json_content(DeviceList, "Devices"), "401": _problem, "403": _problem},
            },
            "post": _op("Register a device", "createDevice", "201", DeviceInput, errors=("401", "409", "422")),
        },
        "/devices/{device_id}": {
            "get": _op("One device (owner or office)", "getDevice", params=_id_param),
            "patch": _op(
                "Change a device", "updateDevice", body=DeviceChanges, params=_id_param, errors=("401", "404", "409", "422")
            ),
        },
        "/devices/{device_id}/retire": {"post": _op("Retire a device", "retireDevice", params=_id_param)},
        "/devices/{device_id}/report-lost": {
            "post": _op(
                "Report a device lost or stolen",
                "reportDeviceLost",
                body=LostReport,
                params=_id_param,
                errors=("401", "404", "409", "422"),
            )
        },
        "/devices/{device_id}/found": {
            "post": _op("Mark a lost device found", "markDeviceFound", params=_id_param, errors=("401", "404", "409"))
        },
    }
)
