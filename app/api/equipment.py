"""School equipment over JSON: assets (with check-out and check-in), loans and stock-takes."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from flask import request
from flask_login import current_user, login_required
from pydantic import Field

from app.access import roles_required
from app.api import bp
from app.api.openapi import json_content, register_paths, request_body
from app.api.shapes import (
    Body,
    Day,
    Flag,
    Id,
    OptionalTimestamp,
    PersonRef,
    Refusal,
    Shape,
    Text,
    Timestamp,
    choice,
    no_default,
    read_body,
    reply,
    school_date,
    text,
)
from app.clock import local_today
from app.extensions import db
from app.models import AssetKind, AssetStatus, Role, SchoolAsset
from app.models import Loan as LoanModel
from app.models import StockTake as StockTakeModel
from app.services import assets, loans, stocktakes
from app.services.errors import Forbidden, ValidationFailed

_KINDS = [k.value for k in AssetKind]
_DATE_EXAMPLE = "2026-11-27"


_TAG = r"^[A-Za-z0-9][A-Za-z0-9-]*$"
_TAG_REFUSAL = Refusal("Use letters, digits and dashes only (up to 40), starting with a letter or digit, like CAM-001.")
_ASSET_IMEI = "work mobiles and tablets only; 15 digits or a 16-digit IMEISV"
_STATUSES = ("available", "in_repair", "lost")


class AssetInput(Body):
    """A new asset: its tag, name and kind are required."""

    tag: Annotated[Text, _TAG_REFUSAL] = text(required=True, max_length=40, pattern=_TAG)
    name: Text = text(required=True, max_length=120)
    kind: choice(*_KINDS)
    make: Text = text("", max_length=60)
    model: Text = text("", max_length=60)
    serial: Text = text("", max_length=60)
    imei: Text = Field("", description=_ASSET_IMEI)
    recording_capable: Flag = True
    home_location: Text = text("", max_length=80)
    notes: Text = text("", max_length=1000)
    status: choice(*_STATUSES) = "available"


class AssetChanges(Body):
    """A change to an asset: the fields left out keep their values."""

    tag: Annotated[Text, _TAG_REFUSAL] = text(unset=True, min_length=1, max_length=40, pattern=_TAG)
    name: Text = text(unset=True, not_blank=True, max_length=120)
    kind: choice(*_KINDS) = Field("camera", json_schema_extra=no_default)
    make: Text = text(unset=True, max_length=60)
    model: Text = text(unset=True, max_length=60)
    serial: Text = text(unset=True, max_length=60)
    imei: Text = text(unset=True, description=_ASSET_IMEI)
    recording_capable: Flag = Field(True, json_schema_extra=no_default)
    home_location: Text = text(unset=True, max_length=80)
    notes: Text = text(unset=True, max_length=1000)
    status: choice(*_STATUSES) = Field("available", json_schema_extra=no_default)


class CheckOut(Body):
    borrower_id: Id
    due_on: Annotated[date, *school_date(_DATE_EXAMPLE)]
    purpose: Text = text("", max_length=200)
    condition: Text = text("", max_length=500)
    terms_accepted_in_person: Flag = Field(
        False, description="the borrower read and accepted the terms at the office; otherwise they are asked on their phone"
    )


class CheckIn(Body):
    condition: Text = text("", max_length=500)
    damaged: Flag = False


class StockTakeInput(Body):
    location: Text = text("", max_length=80, description="empty: every location")


class ScanInput(Body):
    tag: Text = text(required=True, max_length=2048, description="the tag, or the label's whole URL")
    condition: Text = text("", max_length=200)


class AssetRef(Shape):
    id: int
    tag: str
    name: str

    @classmethod
    def of(cls, asset: SchoolAsset) -> AssetRef:
        return cls(id=asset.id, tag=asset.tag, name=asset.name)


class Loan(Shape):
    id: int
    asset: AssetRef
    borrower: PersonRef
    issued_by: PersonRef
    out_at: Timestamp
    due_on: Day = Field(description="a school date (Europe/London)")
    purpose: str
    condition_out: str
    returned_at: OptionalTimestamp
    received_by: PersonRef | None
    condition_in: str
    damaged: bool
    overdue: bool
    terms_text: str = Field(description="the terms for school equipment as worded when it was lent")
    terms_accepted_at: OptionalTimestamp
    terms_accepted_via: Literal["in_person", "own_phone"] | None
    terms_recorded_by: PersonRef | None

    @classmethod
    def of(cls, loan: LoanModel, today: date | None = None) -> Loan:
        return cls(
            id=loan.id,
            asset=AssetRef.of(loan.asset),
            borrower=PersonRef.of(loan.borrower),
            issued_by=PersonRef.of(loan.issued_by),
            out_at=loan.out_at,
            due_on=loan.due_on,
            purpose=loan.purpose,
            condition_out=loan.condition_out,
            returned_at=loan.returned_at,
            received_by=PersonRef.maybe(loan.received_by),
            condition_in=loan.condition_in,
            damaged=loan.damaged,
            overdue=loan.is_overdue(today or local_today()),
            terms_text=loan.terms_text,
            terms_accepted_at=loan.terms_accepted_at,
            terms_accepted_via=loans.accepted_via(loan),
            terms_recorded_by=PersonRef.maybe(loan.terms_recorded_by),
        )


class LoanList(Shape):
    items: list[Loan]


class Asset(Shape):
    """The office's view of an asset (IMEI in full: only the office reaches it)."""

    id: int
    tag: str
    name: str
    kind: AssetKind
    make: str
    model: str
    serial: str
    imei: str | None
    recording_capable: bool
    status: AssetStatus
    home_location: str
    notes: str
    last_audited_at: OptionalTimestamp
    created_at: Timestamp
    updated_at: Timestamp
    open_loan: Loan | None

    @classmethod
    def of(cls, asset: SchoolAsset, open_loan: LoanModel | None = None) -> Asset:
        return cls(
            id=asset.id,
            tag=asset.tag,
            name=asset.name,
            kind=asset.kind,
            make=asset.make,
            model=asset.model,
            serial=asset.serial,
            imei=asset.imei,
            recording_capable=asset.recording_capable,
            status=asset.status,
            home_location=asset.home_location,
            notes=asset.notes,
            last_audited_at=asset.last_audited_at,
            created_at=asset.created_at,
            updated_at=asset.updated_at,
            open_loan=Loan.of(open_loan) if open_loan is not None else None,
        )


class AssetList(Shape):
    items: list[Asset]


class StockTake(Shape):
    id: int
    location: str
    started_at: Timestamp
    started_by: PersonRef
    closed_at: OptionalTimestamp
    closed_by: PersonRef | None

    @classmethod
    def fields_of(cls, take: StockTakeModel) -> dict:
        return {
            "id": take.id,
            "location": take.location,
            "started_at": take.started_at,
            "started_by": PersonRef.of(take.started_by),
            "closed_at": take.closed_at,
            "closed_by": PersonRef.maybe(take.closed_by),
        }

    @classmethod
    def of(cls, take: StockTakeModel) -> StockTake:
        return cls(**cls.fields_of(take))


class Scan(Shape):
    id: int
    tag: str
    asset: AssetRef | None
    condition: str
    scanned_at: Timestamp

    @classmethod
    def of(cls, scan) -> Scan:
        return cls(
            id=scan.id,
            tag=scan.tag,
            asset=AssetRef.of(scan.asset) if scan.asset else None,
            condition=scan.condition,
            scanned_at=scan.scanned_at,
        )


class ReportLine(Shape):
    tag: str
    asset_id: int | None
    name: str | None
    borrower: PersonRef | None
    loaned_since: OptionalTimestamp
    condition: str


class StockTakeDetail(StockTake):
    scans: list[Scan]
    report: dict[str, list[ReportLine]] = Field(
        default_factory=dict, description="present once closed: missing, on_loan, unexpected, present"
    )


class ClosedStockTake(StockTake):
    counts: dict[str, int]


class ScanResult(Shape):
    scan: Scan
    created: bool
    expected: bool
    message: str
    scanned_count: int
    found_count: int = Field(description="Expected items scanned so far")
    expected_count: int
    unexpected_count: int = Field(description="Assets scanned that are not looked for in this stock-take")
    unknown_count: int = Field(description="Scanned tags that no asset has")


def _details(body: AssetInput | AssetChanges, base: SchoolAsset | None = None) -> assets.AssetDetails:
    sent = body.model_dump(exclude_unset=True)
    if base is None:
        return assets.AssetDetails(**{**body.model_dump(), **sent})
    current = {name: getattr(base, name) for name in AssetChanges.model_fields}
    return assets.AssetDetails(**{**current, "imei": base.imei or "", "status": "", **sent})


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
    return reply(AssetList(items=[Asset.of(a) for a in found]))


@bp.post("/assets")
@roles_required(Role.OFFICE)
def create_asset():
    asset = assets.create_asset(db.session, current_user, _details(read_body(AssetInput)), via="api")
    db.session.commit()
    return reply(Asset.of(asset), 201)


@bp.get("/assets/<int:asset_id>")
@roles_required(Role.OFFICE)
def get_asset(asset_id: int):
    asset = assets.get_asset(db.session, asset_id)
    return reply(Asset.of(asset, loans.open_loan_for(db.session, asset.id)))


@bp.patch("/assets/<int:asset_id>")
@roles_required(Role.OFFICE)
def update_asset(asset_id: int):
    asset = assets.get_asset(db.session, asset_id)
    assets.update_asset(db.session, current_user, asset, _details(read_body(AssetChanges), asset))
    db.session.commit()
    return reply(Asset.of(asset, loans.open_loan_for(db.session, asset.id)))


@bp.post("/assets/<int:asset_id>/check-out")
@roles_required(Role.OFFICE)
def check_out(asset_id: int):
    body = read_body(CheckOut)
    loan = loans.check_out(
        db.session,
        current_user,
        asset_id,
        borrower_id=body.borrower_id,
        due_on=body.due_on,
        purpose=body.purpose,
        condition=body.condition,
        accepted_in_person=body.terms_accepted_in_person,
    )
    # The answer is built before the commit: afterwards every row has expired, and reading the loan back
    # would reload it with its asset and four people (and their roles) for nothing (issue 13).
    answer = reply(Loan.of(loan), 201)
    db.session.commit()
    return answer


@bp.post("/assets/<int:asset_id>/check-in")
@roles_required(Role.OFFICE)
def check_in(asset_id: int):
    body = read_body(CheckIn, optional=True)
    loan = loans.check_in(db.session, current_user, asset_id, condition=body.condition, damaged=body.damaged)
    answer = reply(Loan.of(loan))  # built before the commit, as for check-out
    db.session.commit()
    return answer


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
    return reply(LoanList(items=[Loan.of(loan, today) for loan in found]))


@bp.get("/loans/<int:loan_id>")
@login_required
def get_loan(loan_id: int):
    return reply(Loan.of(loans.visible_loan(db.session, current_user, loan_id)))


# Stock-takes ----------------------------------------------------------------------------------------


@bp.post("/stocktakes")
@roles_required(Role.OFFICE)
def start_stocktake():
    body = read_body(StockTakeInput, optional=True)
    take = stocktakes.start_stocktake(db.session, current_user, body.location)
    db.session.commit()
    return reply(StockTake.of(take), 201)


@bp.get("/stocktakes/<int:stocktake_id>")
@roles_required(Role.OFFICE)
def get_stocktake(stocktake_id: int):
    take = stocktakes.get_stocktake(db.session, stocktake_id)
    detail = StockTakeDetail(**StockTake.fields_of(take), scans=[Scan.of(s) for s in stocktakes.scans_of(db.session, take.id)])
    if not take.is_open:
        detail.report = {
            outcome: [
                ReportLine(
                    tag=r.tag,
                    asset_id=r.asset_id,
                    name=r.asset.name if r.asset else None,
                    borrower=PersonRef.maybe(r.borrower),
                    loaned_since=r.loaned_since,
                    condition=r.condition,
                )
                for r in results
            ]
            for outcome, results in stocktakes.stocktake_report(db.session, take).items()
        }
    return reply(detail)


@bp.post("/stocktakes/<int:stocktake_id>/scans")
@roles_required(Role.OFFICE)
def record_scan(stocktake_id: int):
    body = read_body(ScanInput)
    result = stocktakes.record_scan(db.session, current_user, stocktake_id, body.tag, body.condition)
    db.session.commit()
    tally = stocktakes.scan_tally(db.session, stocktakes.get_stocktake(db.session, stocktake_id))
    answer = ScanResult(
        scan=Scan.of(result.scan),
        created=result.created,
        expected=result.expected,
        message=result.message,
        scanned_count=len(stocktakes.scans_of(db.session, stocktake_id)),
        found_count=tally.found,
        expected_count=tally.expected,
        unexpected_count=tally.unexpected,
        unknown_count=tally.unknown,
    )
    return reply(answer, 201 if result.created else 200)


@bp.post("/stocktakes/<int:stocktake_id>/close")
@roles_required(Role.OFFICE)
def close_stocktake(stocktake_id: int):
    counts = stocktakes.close_stocktake(db.session, current_user, stocktake_id)
    db.session.commit()
    return reply(ClosedStockTake(**StockTake.fields_of(stocktakes.get_stocktake(db.session, stocktake_id)), counts=counts))


# OpenAPI -------------------------------------------------------------------------------------------

_problem = {"$ref": "#/components/responses/Problem"}


def _path_param(name: str) -> list[dict]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}]


def _op(
    summary: str, op_id: str, responses: dict, *, body: type[Body] | None = None, params=None, body_required: bool = True
) -> dict:
    operation: dict = {"summary": summary, "operationId": op_id, "responses": responses}
    if params:
        operation["parameters"] = params
    if body:
        operation["requestBody"] = request_body(body, body_required)
    return operation


_office_errors = {"401": _problem, "403": _problem}
_kinds = [k.value for k in AssetKind]
_statuses = [s.value for s in AssetStatus]

register_paths(
    {
        "/assets": {
            "get": _op(
                "Find school assets (office)",
                "listAssets",
                {"200": json_content(AssetList, "Assets, ordered by tag"), "422": _problem, **_office_errors},
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
                {"201": json_content(Asset, "The asset"), "409": _problem, "422": _problem, **_office_errors},
                body=AssetInput,
            ),
        },
        "/assets/{asset_id}": {
            "get": _op(
                "One asset with its open loan (office)",
                "getAsset",
                {"200": json_content(Asset, "The asset"), "404": _problem, **_office_errors},
                params=_path_param("asset_id"),
            ),
            "patch": _op(
                "Change an asset (office)",
                "updateAsset",
                {"200": json_content(Asset, "The asset"), "404": _problem, "409": _problem, "422": _problem, **_office_errors},
                body=AssetChanges,
                params=_path_param("asset_id"),
            ),
        },
        "/assets/{asset_id}/check-out": {
            "post": _op(
                "Lend an asset (office); refused with 409 while it is on loan",
                "checkOutAsset",
                {"201": json_content(Loan, "The new loan"), "404": _problem, "409": _problem, "422": _problem, **_office_errors},
                body=CheckOut,
                params=_path_param("asset_id"),
            ),
        },
        "/assets/{asset_id}/check-in": {
            "post": _op(
                "Take an asset back (office); refused with 409 when it is not on loan",
                "checkInAsset",
                {
                    "200": json_content(Loan, "The closed loan"),
                    "404": _problem,
                    "409": _problem,
                    "422": _problem,
                    **_office_errors,
                },
                body=CheckIn,
                params=_path_param("asset_id"),
                body_required=False,
            ),
        },
        "/loans": {
            "get": _op(
                "Loans: staff see only their own; the office sees everyone's open loans",
                "listLoans",
                {"200": json_content(LoanList, "Loans"), "401": _problem, "403": _problem},
                params=[
                    {"name": "overdue", "in": "query", "schema": {"type": "string", "enum": ["true", "false"]}},
                    {"name": "scope", "in": "query", "schema": {"type": "string", "enum": ["mine", "all"]}},
                    {
                        "name": "returned",
                        "in": "query",
                        "description": "with scope=mine: include returned loans",
                        "schema": {"type": "string", "enum": ["true", "false"]},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "description": "with scope=all (default 100)",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                    },
                    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 1000000}},
                ],
            ),
        },
        "/loans/{loan_id}": {
            "get": _op(
                "One loan (its borrower or the office)",
                "getLoan",
                {"200": json_content(Loan, "The loan"), "401": _problem, "404": _problem},
                params=_path_param("loan_id"),
            ),
        },
        "/stocktakes": {
            "post": _op(
                "Start a stock-take, optionally of one location (office); one is open at a time",
                "startStockTake",
                {"201": json_content(StockTake, "The stock-take"), "409": _problem, "422": _problem, **_office_errors},
                body=StockTakeInput,
                body_required=False,
            ),
        },
        "/stocktakes/{stocktake_id}": {
            "get": _op(
                "A stock-take, its scans and (once closed) its report (office)",
                "getStockTake",
                {"200": json_content(StockTakeDetail, "The stock-take"), "404": _problem, **_office_errors},
                params=_path_param("stocktake_id"),
            ),
        },
        "/stocktakes/{stocktake_id}/scans": {
            "post": _op(
                "Record a scanned label; scanning it again answers 200 with the first scan and changes nothing",
                "recordStockTakeScan",
                {
                    "201": json_content(ScanResult, "Recorded"),
                    "200": json_content(ScanResult, "Already recorded"),
                    "404": _problem,
                    "409": _problem,
                    "422": _problem,
                    **_office_errors,
                },
                body=ScanInput,
                params=_path_param("stocktake_id"),
            ),
        },
        "/stocktakes/{stocktake_id}/close": {
            "post": _op(
                "Close a stock-take and keep its report (office)",
                "closeStockTake",
                {
                    "200": json_content(ClosedStockTake, "The closed stock-take with counts by outcome"),
                    "404": _problem,
                    "409": _problem,
                    **_office_errors,
                },
                params=_path_param("stocktake_id"),
            ),
        },
    }
)
