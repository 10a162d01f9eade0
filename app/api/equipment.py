"""School equipment over JSON: assets (with check-out and check-in), loans and stock-takes."""

from __future__ import annotations

from datetime import date

from flask import request
from flask_login import current_user, login_required

from app.access import roles_required
from app.api import bp
from app.api.helpers import ID_SCHEMA, bool_field, id_field, json_body, text_field
from app.api.openapi import register_paths
from app.clock import local_today
from app.extensions import db
from app.models import AssetKind, AssetStatus, Role, SchoolAsset, StockTake
from app.services import assets, loans, stocktakes
from app.services.errors import Forbidden, ValidationFailed

ASSET_FIELDS = {"tag", "name", "kind", "make", "model", "serial", "imei", "recording_capable", "home_location", "notes", "status"}


def asset_json(asset: SchoolAsset, open_loan=None) -> dict:
    """The office's view of an asset (IMEI in full: only the office reaches it)."""
    return {
        "id": asset.id,
        "tag": asset.tag,
        "name": asset.name,
        "kind": asset.kind,
        "make": asset.make,
        "model": asset.model,
        "serial": asset.serial,
        "imei": asset.imei,
        "recording_capable": asset.recording_capable,
        "status": asset.status,
        "home_location": asset.home_location,
        "notes": asset.notes,
        "last_audited_at": asset.last_audited_at.isoformat() if asset.last_audited_at else None,
        "created_at": asset.created_at.isoformat(),
        "updated_at": asset.updated_at.isoformat(),
        "open_loan": loans.loan_json(open_loan) if open_loan is not None else None,
    }


def stocktake_json(take: StockTake) -> dict:
    return {
        "id": take.id,
        "location": take.location,
        "started_at": take.started_at.isoformat(),
        "started_by": {"id": take.started_by.id, "name": take.started_by.display_name},
        "closed_at": take.closed_at.isoformat() if take.closed_at else None,
        "closed_by": {"id": take.closed_by.id, "name": take.closed_by.display_name} if take.closed_by else None,
    }


def scan_json(scan) -> dict:
    return {
        "id": scan.id,
        "tag": scan.tag,
        "asset": {"id": scan.asset.id, "tag": scan.asset.tag, "name": scan.asset.name} if scan.asset else None,
        "condition": scan.condition,
        "scanned_at": scan.scanned_at.isoformat(),
    }


def _details(data: dict, base: SchoolAsset | None = None) -> assets.AssetDetails:
    def field(name: str, current: str) -> str:
        return text_field(data, name, current)

    return assets.AssetDetails(
        tag=field("tag", base.tag if base else ""),
        name=field("name", base.name if base else ""),
        kind=field("kind", base.kind if base else ""),
        make=field("make", base.make if base else ""),
        model=field("model", base.model if base else ""),
        serial=field("serial", base.serial if base else ""),
        imei=field("imei", (base.imei or "") if base else ""),
        recording_capable=bool_field(data, "recording_capable", base.recording_capable if base else True),
        home_location=field("home_location", base.home_location if base else ""),
        notes=field("notes", base.notes if base else ""),
        status=field("status", ""),
    )


def _date_field(data: dict, name: str) -> date | None:
    value = data.get(name)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be a date.", {name: ["Use a date like 2026-11-27."]})
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise ValidationFailed(f"{name} must be a date.", {name: ["Use a date like 2026-11-27."]}) from error


# Assets --------------------------------------------------------------------------------------------


@bp.get("/assets")
@roles_required(Role.OFFICE)
def list_assets():
    kind = request.args.get("kind", "")
    status = request.args.get("status", "")
    if kind and kind not in {k.value for k in AssetKind}:
        raise ValidationFailed("Unknown kind.", {"kind": ["Unknown kind."]})
    if status and status not in {s.value for s in AssetStatus}:
        raise ValidationFailed("Unknown status.", {"status": ["Unknown status."]})
    limit = min(max(request.args.get("limit", 50, type=int) or 50, 1), 200)
    offset = min(max(request.args.get("offset", 0, type=int) or 0, 0), 1_000_000)
    found = assets.search_assets(
        db.session,
        request.args.get("q", "")[:100],
        kind=kind,
        status=status,
        location=request.args.get("location", "")[:80],
        limit=limit,
        offset=offset,
    )
    return {"items": [asset_json(a) for a in found]}


@bp.post("/assets")
@roles_required(Role.OFFICE)
def create_asset():
    asset = assets.create_asset(db.session, current_user, _details(json_body(ASSET_FIELDS)), via="api")
    db.session.commit()
    return asset_json(asset), 201


@bp.get("/assets/<int:asset_id>")
@roles_required(Role.OFFICE)
def get_asset(asset_id: int):
    asset = assets.get_asset(db.session, asset_id)
    return asset_json(asset, loans.open_loan_for(db.session, asset.id))


@bp.patch("/assets/<int:asset_id>")
@roles_required(Role.OFFICE)
def update_asset(asset_id: int):
    asset = assets.get_asset(db.session, asset_id)
    assets.update_asset(db.session, current_user, asset, _details(json_body(ASSET_FIELDS), asset))
    db.session.commit()
    return asset_json(asset, loans.open_loan_for(db.session, asset.id))


@bp.post("/assets/<int:asset_id>/check-out")
@roles_required(Role.OFFICE)
def check_out(asset_id: int):
    data = json_body({"borrower_id", "due_on", "purpose", "condition"})
    loan = loans.check_out(
        db.session,
        current_user,
        asset_id,
        borrower_id=id_field(data, "borrower_id", required=False),
        due_on=_date_field(data, "due_on"),
        purpose=text_field(data, "purpose"),
        condition=text_field(data, "condition"),
    )
    db.session.commit()
    return loans.loan_json(loan), 201


@bp.post("/assets/<int:asset_id>/check-in")
@roles_required(Role.OFFICE)
def check_in(asset_id: int):
    data = json_body({"condition", "damaged"}) if request.get_data() else {}
    loan = loans.check_in(
        db.session, current_user, asset_id, condition=text_field(data, "condition"), damaged=bool_field(data, "damaged")
    )
    db.session.commit()
    return loans.loan_json(loan)


# Loans --------------------------------------------------------------------------------------------


@bp.get("/loans")
@login_required
def list_loans():
    """Staff see only their own loans; the office sees everyone's (scope=all, its default)."""
    office = current_user.has_role(Role.OFFICE)
    scope = request.args.get("scope", "all" if office else "mine")
    overdue = request.args.get("overdue") == "true"
    today = local_today()
    limit = min(max(request.args.get("limit", loans.PAGE_SIZE, type=int) or loans.PAGE_SIZE, 1), 500)
    offset = min(max(request.args.get("offset", 0, type=int) or 0, 0), 1_000_000)
    if scope == "all":
        if not office:
            raise Forbidden("Only the office can list everyone's loans.")
        found = loans.open_loans(db.session, overdue_only=overdue, today=today, limit=limit, offset=offset)
    else:
        found = loans.loans_of(db.session, current_user, include_returned=request.args.get("returned") == "true")
        if overdue:
            found = [loan for loan in found if loan.is_overdue(today)]
    return {"items": [loans.loan_json(loan, today) for loan in found]}


@bp.get("/loans/<int:loan_id>")
@login_required
def get_loan(loan_id: int):
    return loans.loan_json(loans.visible_loan(db.session, current_user, loan_id))


# Stock-takes ----------------------------------------------------------------------------------------


@bp.post("/stocktakes")
@roles_required(Role.OFFICE)
def start_stocktake():
    data = json_body({"location"}) if request.get_data() else {}
    take = stocktakes.start_stocktake(db.session, current_user, text_field(data, "location"))
    db.session.commit()
    return stocktake_json(take), 201


@bp.get("/stocktakes/<int:stocktake_id>")
@roles_required(Role.OFFICE)
def get_stocktake(stocktake_id: int):
    take = stocktakes.get_stocktake(db.session, stocktake_id)
    body = {**stocktake_json(take), "scans": [scan_json(s) for s in stocktakes.scans_of(db.session, take.id)]}
    if not take.is_open:
        body["report"] = {
            outcome: [
                {
                    "tag": r.tag,
                    "asset_id": r.asset_id,
                    "name": r.asset.name if r.asset else None,
                    "borrower": {"id": r.borrower.id, "name": r.borrower.display_name} if r.borrower else None,
                    "loaned_since": r.loaned_since.isoformat() if r.loaned_since else None,
                    "condition": r.condition,
                }
                for r in results
            ]
            for outcome, results in stocktakes.stocktake_report(db.session, take).items()
        }
    return body


@bp.post("/stocktakes/<int:stocktake_id>/scans")
@roles_required(Role.OFFICE)
def record_scan(stocktake_id: int):
    data = json_body({"tag", "condition"})
    result = stocktakes.record_scan(db.session, current_user, stocktake_id, text_field(data, "tag"), text_field(data, "condition"))
    db.session.commit()
    body = {
        "scan": scan_json(result.scan),
        "created": result.created,
        "expected": result.expected,
        "message": result.message,
        "scanned_count": len(stocktakes.scans_of(db.session, stocktake_id)),
    }
    return body, 201 if result.created else 200


@bp.post("/stocktakes/<int:stocktake_id>/close")
@roles_required(Role.OFFICE)
def close_stocktake(stocktake_id: int):
    counts = stocktakes.close_stocktake(db.session, current_user, stocktake_id)
    db.session.commit()
    return {**stocktake_json(stocktakes.get_stocktake(db.session, stocktake_id)), "counts": counts}


# OpenAPI -------------------------------------------------------------------------------------------

_problem = {"$ref": "#/components/responses/Problem"}


def _json(schema: str | dict) -> dict:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"} if isinstance(schema, str) else schema}}


def _path_param(name: str) -> list[dict]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}]


def _op(summary: str, op_id: str, responses: dict, *, body: str | None = None, params=None, body_required: bool = True) -> dict:
    operation: dict = {"summary": summary, "operationId": op_id, "responses": responses}
    if params:
        operation["parameters"] = params
    if body:
        operation["requestBody"] = {"required": body_required, "content": _json(body)}
    return operation


def _list_of(schema: str) -> dict:
    return {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {"$ref": f"#/components/schemas/{schema}"}}}}


_office_errors = {"401": _problem, "403": _problem}
_kinds = [k.value for k in AssetKind]
_statuses = [s.value for s in AssetStatus]

register_paths(
    {
        "/assets": {
            "get": _op(
                "Find school assets (office)",
                "listAssets",
                {"200": {"description": "Assets, ordered by tag", "content": _json(_list_of("Asset"))}, "422": _problem, **_office_errors},
                params=[
                    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 100}},
                    {"name": "kind", "in": "query", "schema": {"type": "string", "enum": _kinds}},
                    {"name": "status", "in": "query", "schema": {"type": "string", "enum": _statuses}},
                    {"name": "location", "in": "query", "schema": {"type": "string", "maxLength": 80}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 1000000}},
                ],
            ),
            "post": _op(
                "Add a school asset (office)",
                "createAsset",
                {"201": {"description": "The asset", "content": _json("Asset")}, "409": _problem, "422": _problem, **_office_errors},
                body="AssetInput",
            ),
        },
        "/assets/{asset_id}": {
            "get": _op(
                "One asset with its open loan (office)",
                "getAsset",
                {"200": {"description": "The asset", "content": _json("Asset")}, "404": _problem, **_office_errors},
                params=_path_param("asset_id"),
            ),
            "patch": _op(
                "Change an asset (office)",
                "updateAsset",
                {"200": {"description": "The asset", "content": _json("Asset")}, "404": _problem, "409": _problem, "422": _problem, **_office_errors},
                body="AssetInput",
                params=_path_param("asset_id"),
            ),
        },
        "/assets/{asset_id}/check-out": {
            "post": _op(
                "Lend an asset (office); refused with 409 while it is on loan",
                "checkOutAsset",
                {"201": {"description": "The new loan", "content": _json("Loan")}, "404": _problem, "409": _problem, "422": _problem, **_office_errors},
                body="CheckOut",
                params=_path_param("asset_id"),
            ),
        },
        "/assets/{asset_id}/check-in": {
            "post": _op(
                "Take an asset back (office); refused with 409 when it is not on loan",
                "checkInAsset",
                {"200": {"description": "The closed loan", "content": _json("Loan")}, "404": _problem, "409": _problem, "422": _problem, **_office_errors},
                body="CheckIn",
                params=_path_param("asset_id"),
                body_required=False,
            ),
        },
        "/loans": {
            "get": _op(
                "Loans: staff see only their own; the office sees everyone's open loans",
                "listLoans",
                {"200": {"description": "Loans", "content": _json(_list_of("Loan"))}, "401": _problem, "403": _problem},
                params=[
                    {"name": "overdue", "in": "query", "schema": {"type": "string", "enum": ["true", "false"]}},
                    {"name": "scope", "in": "query", "schema": {"type": "string", "enum": ["mine", "all"]}},
                    {"name": "returned", "in": "query", "description": "with scope=mine: include returned loans", "schema": {"type": "string", "enum": ["true", "false"]}},
                    {"name": "limit", "in": "query", "description": "with scope=all (default 100)", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 1000000}},
                ],
            ),
        },
        "/loans/{loan_id}": {
            "get": _op(
                "One loan (its borrower or the office)",
                "getLoan",
                {"200": {"description": "The loan", "content": _json("Loan")}, "401": _problem, "404": _problem},
                params=_path_param("loan_id"),
            ),
        },
        "/stocktakes": {
            "post": _op(
                "Start a stock-take, optionally of one location (office); one is open at a time",
                "startStockTake",
                {"201": {"description": "The stock-take", "content": _json("StockTake")}, "409": _problem, "422": _problem, **_office_errors},
                body="StockTakeInput",
                body_required=False,
            ),
        },
        "/stocktakes/{stocktake_id}": {
            "get": _op(
                "A stock-take, its scans and (once closed) its report (office)",
                "getStockTake",
                {"200": {"description": "The stock-take", "content": _json("StockTakeDetail")}, "404": _problem, **_office_errors},
                params=_path_param("stocktake_id"),
            ),
        },
        "/stocktakes/{stocktake_id}/scans": {
            "post": _op(
                "Record a scanned label; scanning it again answers 200 with the first scan and changes nothing",
                "recordStockTakeScan",
                {
                    "201": {"description": "Recorded", "content": _json("ScanResult")},
                    "200": {"description": "Already recorded", "content": _json("ScanResult")},
                    "404": _problem,
                    "409": _problem,
                    "422": _problem,
                    **_office_errors,
                },
                body="ScanInput",
                params=_path_param("stocktake_id"),
            ),
        },
        "/stocktakes/{stocktake_id}/close": {
            "post": _op(
                "Close a stock-take and keep its report (office)",
                "closeStockTake",
                {"200": {"description": "The closed stock-take with counts by outcome", "content": _json("ClosedStockTake")}, "404": _problem, "409": _problem, **_office_errors},
                params=_path_param("stocktake_id"),
            ),
        },
    },
    {
        "Asset": {
            "type": "object",
            "required": ["id", "tag", "name", "kind", "status"],
            "properties": {
                "id": {"type": "integer"},
                "tag": {"type": "string"},
                "name": {"type": "string"},
                "kind": {"type": "string", "enum": _kinds},
                "make": {"type": "string"},
                "model": {"type": "string"},
                "serial": {"type": "string"},
                "imei": {"type": ["string", "null"]},
                "recording_capable": {"type": "boolean"},
                "status": {"type": "string", "enum": _statuses},
                "home_location": {"type": "string"},
                "notes": {"type": "string"},
                "last_audited_at": {"type": ["string", "null"], "format": "date-time"},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
                "open_loan": {"oneOf": [{"$ref": "#/components/schemas/Loan"}, {"type": "null"}]},
            },
        },
        "AssetInput": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "tag": {"type": "string", "maxLength": 40, "pattern": "^[A-Za-z0-9][A-Za-z0-9-]*$"},
                "name": {"type": "string", "maxLength": 120},
                "kind": {"type": "string", "enum": _kinds},
                "make": {"type": "string", "maxLength": 60},
                "model": {"type": "string", "maxLength": 60},
                "serial": {"type": "string", "maxLength": 60},
                "imei": {"type": "string", "description": "work mobiles and tablets only; 15 digits or a 16-digit IMEISV"},
                "recording_capable": {"type": "boolean"},
                "home_location": {"type": "string", "maxLength": 80},
                "notes": {"type": "string", "maxLength": 1000},
                "status": {"type": "string", "enum": ["available", "in_repair", "lost"]},
            },
        },
        "Loan": {
            "type": "object",
            "required": ["id", "asset", "borrower", "out_at", "due_on", "overdue"],
            "properties": {
                "id": {"type": "integer"},
                "asset": {"type": "object", "properties": {"id": {"type": "integer"}, "tag": {"type": "string"}, "name": {"type": "string"}}},
                "borrower": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
                "issued_by": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
                "out_at": {"type": "string", "format": "date-time"},
                "due_on": {"type": "string", "format": "date", "description": "a school date (Europe/London)"},
                "purpose": {"type": "string"},
                "condition_out": {"type": "string"},
                "returned_at": {"type": ["string", "null"], "format": "date-time"},
                "received_by": {"oneOf": [{"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}, {"type": "null"}]},
                "condition_in": {"type": "string"},
                "damaged": {"type": "boolean"},
                "overdue": {"type": "boolean"},
            },
        },
        "CheckOut": {
            "type": "object",
            "additionalProperties": False,
            "required": ["borrower_id", "due_on"],
            "properties": {
                "borrower_id": ID_SCHEMA,
                "due_on": {"type": "string", "format": "date"},
                "purpose": {"type": "string", "maxLength": 200},
                "condition": {"type": "string", "maxLength": 500},
            },
        },
        "CheckIn": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"condition": {"type": "string", "maxLength": 500}, "damaged": {"type": "boolean"}},
        },
        "StockTakeInput": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"location": {"type": "string", "maxLength": 80, "description": "empty: every location"}},
        },
        "StockTake": {
            "type": "object",
            "required": ["id", "location", "started_at"],
            "properties": {
                "id": {"type": "integer"},
                "location": {"type": "string"},
                "started_at": {"type": "string", "format": "date-time"},
                "started_by": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
                "closed_at": {"type": ["string", "null"], "format": "date-time"},
                "closed_by": {"oneOf": [{"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}, {"type": "null"}]},
            },
        },
        "Scan": {
            "type": "object",
            "required": ["id", "tag"],
            "properties": {
                "id": {"type": "integer"},
                "tag": {"type": "string"},
                "asset": {"oneOf": [{"type": "object", "properties": {"id": {"type": "integer"}, "tag": {"type": "string"}, "name": {"type": "string"}}}, {"type": "null"}]},
                "condition": {"type": "string"},
                "scanned_at": {"type": "string", "format": "date-time"},
            },
        },
        "ScanInput": {
            "type": "object",
            "additionalProperties": False,
            "required": ["tag"],
            "properties": {
                "tag": {"type": "string", "description": "the tag, or the label's whole URL"},
                "condition": {"type": "string", "maxLength": 200},
            },
        },
        "ScanResult": {
            "type": "object",
            "required": ["scan", "created", "expected", "message", "scanned_count"],
            "properties": {
                "scan": {"$ref": "#/components/schemas/Scan"},
                "created": {"type": "boolean"},
                "expected": {"type": "boolean"},
                "message": {"type": "string"},
                "scanned_count": {"type": "integer"},
            },
        },
        "StockTakeDetail": {
            "allOf": [
                {"$ref": "#/components/schemas/StockTake"},
                {
                    "type": "object",
                    "properties": {
                        "scans": {"type": "array", "items": {"$ref": "#/components/schemas/Scan"}},
                        "report": {
                            "type": "object",
                            "description": "present once closed: missing, on_loan, unexpected, present",
                            "additionalProperties": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                },
            ]
        },
        "ClosedStockTake": {
            "allOf": [
                {"$ref": "#/components/schemas/StockTake"},
                {
                    "type": "object",
                    "properties": {"counts": {"type": "object", "additionalProperties": {"type": "integer"}}},
                },
            ]
        },
    },
)
