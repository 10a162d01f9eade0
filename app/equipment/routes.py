"""The office's equipment pages (J4) and staff's "My loans". Each route: parse, authorise, call one
service, commit, respond. A scanned label (GET /t/<tag>) only shows; every change is a POST."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, stream_with_context, url_for
from flask_login import current_user, login_required
from wtforms import SelectChoice

from app.access import roles_required
from app.bookings.forms import BookableForm
from app.clock import format_date, local_today
from app.confirmations import ask_first, confirmation_page, confirmed
from app.devices.forms import ConfirmForm
from app.equipment.forms import (
    AcceptTermsForm,
    AssetForm,
    CheckInForm,
    CheckOutForm,
    CollectForm,
    ImportForm,
    RetireForm,
    ScanForm,
    StartStockTakeForm,
)
from app.equipment.labels import LABELS_PER_SHEET, label_url, qr_svg, sheets
from app.extensions import db
from app.forms_support import refused
from app.ids import is_id
from app.models import AssetKind, AssetStatus, Role
from app.navigation import register_nav
from app.read_audit import record_read
from app.services import asset_csv, assets, booking_loans, bookings, kit_loans, loans, stocktakes
from app.services.csv_upload import upload_text
from app.services.errors import Conflict, ValidationFailed
from app.services.school_settings import loan_terms

bp = Blueprint("equipment", __name__)
register_nav("My loans", "equipment.my_loans", (Role.STAFF,), order=20)
register_nav("Equipment", "equipment.index", (Role.OFFICE,), order=55)
register_nav("Scan a label", "equipment.scan", (Role.OFFICE,), order=56, tab_label="Scan")
register_nav("Loans", "equipment.loan_list", (Role.OFFICE,), order=57)

PAGE_SIZE = 50


def _csv(lines, filename: str) -> Response:
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# Assets --------------------------------------------------------------------------------------------


@bp.get("/equipment")
@roles_required(Role.OFFICE)
def index():
    q = request.args.get("q", "")[:100]
    kind = request.args.get("kind", "")
    status = request.args.get("status", "")
    location = request.args.get("location", "")[:80]
    # Clamped: a huge page number would overflow the database's OFFSET (a 500, not an empty page).
    page = min(max(1, request.args.get("page", 1, type=int) or 1), 20_000)
    kind = kind if kind in {k.value for k in AssetKind} else ""
    status = status if status in {s.value for s in AssetStatus} else ""
    found = assets.search_assets(
        db.session, q, kind=kind, status=status, location=location, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
    )
    return render_template(
        "equipment/index.html",
        assets=found[:PAGE_SIZE],
        has_next=len(found) > PAGE_SIZE,
        page=page,
        q=q,
        kind=kind,
        status=status,
        location=location,
        kinds=list(AssetKind),
        statuses=list(AssetStatus),
        locations=assets.home_locations(db.session),
        open_stocktake=stocktakes.open_stocktake(db.session),
        overdue_count=loans.overdue_count(db.session),
    )


@bp.route("/equipment/new", methods=["GET", "POST"])
@roles_required(Role.OFFICE)
def add():
    form = AssetForm()
    if request.method == "GET" and request.args.get("tag"):
        form.tag.data = assets.normalise_tag(request.args["tag"])[:40]
    if form.validate_on_submit():
        with refused(form) as invalid, refused(form, Conflict, summary=False) as clash:
            asset = assets.create_asset(db.session, current_user, form.details())
        if invalid:
            return render_template("equipment/form.html", form=form, asset=None), 422
        if clash:
            return render_template("equipment/form.html", form=form, asset=None, problem=clash.message), 409
        db.session.commit()
        flash(f"{asset.tag} {asset.name} is added.", "success")
        return redirect(url_for("equipment.show", asset_id=asset.id))
    return render_template("equipment/form.html", form=form, asset=None), 422 if form.errors else 200


def _asset_page(asset, scanned: bool = False):
    open_loan = loans.open_loan_for(db.session, asset.id)
    take = stocktakes.open_stocktake(db.session)
    already_scanned = False
    if take is not None:
        already_scanned = any(scan.tag == asset.tag for scan in stocktakes.scans_of(db.session, take.id))
    if take is not None and not already_scanned:
        action = "stocktake"
    elif open_loan is not None:
        action = "check_in"
    elif asset.status == AssetStatus.AVAILABLE.value:
        action = "check_out"
    else:
        action = ""
    booking = booking_loans.collectable_booking(db.session, asset_id=asset.id) if open_loan is None else None
    return render_template(
        "equipment/show.html",
        asset=asset,
        open_loan=open_loan,
        booking=booking,
        slot=booking_loans.slot_text(db.session, booking) if booking else "",
        collect_form=CollectForm(),
        terms=loan_terms(db.session) if booking else "",
        stocktake=take,
        already_scanned=already_scanned,
        action=action,
        scanned=scanned,
        today=local_today(),
        history=assets.asset_history(db.session, asset),
        scan_form=ScanForm(),
        bookable_form=BookableForm(formdata=None, bookable_by=asset.bookable_by or ""),
        kit=bookings.kit_of_asset(db.session, asset.id),
    )


@bp.get("/equipment/<int:asset_id>")
@roles_required(Role.OFFICE)
def show(asset_id: int):
    return _asset_page(assets.get_asset(db.session, asset_id))


@bp.route("/equipment/<int:asset_id>/edit", methods=["GET", "POST"])
@roles_required(Role.OFFICE)
def edit(asset_id: int):
    asset = assets.get_asset(db.session, asset_id)
    form = AssetForm(obj=None if request.method == "POST" else asset)
    if request.method == "GET":
        form.imei.data = asset.imei or ""
        if asset.status in {s.value for s in assets.SETTABLE_STATUSES}:
            form.status.data = asset.status
    if form.validate_on_submit():
        with refused(form) as invalid, refused(form, Conflict, summary=False) as clash:
            changed = assets.update_asset(
                db.session, current_user, asset, form.details(keep_status=asset.status == AssetStatus.ON_LOAN.value)
            )
        if invalid:
            return render_template("equipment/form.html", form=form, asset=asset), 422
        if clash:
            return render_template("equipment/form.html", form=form, asset=asset, problem=clash.message), 409
        db.session.commit()
        flash("Changes saved." if changed else "Nothing was changed.", "success")
        return redirect(url_for("equipment.show", asset_id=asset.id))
    return render_template("equipment/form.html", form=form, asset=asset), 422 if form.errors else 200


@bp.route("/equipment/<int:asset_id>/retire", methods=["GET", "POST"])
@roles_required(Role.OFFICE)
def retire(asset_id: int):
    asset = assets.get_asset(db.session, asset_id)
    form = RetireForm()
    if form.validate_on_submit():
        with refused(form, ValidationFailed, Conflict, summary=False) as refusal:
            assets.retire_asset(db.session, current_user, asset, form.reason.data or "")
        if refusal.error is not None:
            return render_template("equipment/retire.html", form=form, asset=asset, problem=refusal.message), refusal.error.status
        db.session.commit()
        flash(f"{asset.tag} is retired.", "success")
        return redirect(url_for("equipment.show", asset_id=asset.id))
    return render_template("equipment/retire.html", form=form, asset=asset)


# Scanning --------------------------------------------------------------------------------------------


@bp.get("/t/<tag>")
@login_required
def scanned(tag: str):
    """What a label's QR opens. It shows the asset and the action that fits; it never changes anything."""
    asset = assets.find_by_tag(db.session, tag)
    if not current_user.has_role(Role.OFFICE):
        mine = asset is not None and any(a.id == asset.id for a in loans.assets_on_loan_to(db.session, current_user))
        loan = loans.open_loan_for(db.session, asset.id) if mine and asset is not None else None
        return render_template("equipment/tag_staff.html", asset=asset, tag=tag, loan=loan), 200 if asset else 404
    if asset is None and (kit := bookings.find_kit_by_tag(db.session, tag)) is not None:
        from app.equipment.kit_routes import kit_page

        return kit_page(kit, scanned=True)
    if asset is None:
        return render_template("equipment/unknown_tag.html", tag=assets.normalise_tag(tag)[:40]), 404
    return _asset_page(asset, scanned=True)


@bp.get("/equipment/find")
@roles_required(Role.OFFICE)
def find():
    """The type-the-tag fallback: go where the label's QR would have gone."""
    tag = assets.normalise_tag(request.args.get("tag", ""))
    if not tag or not assets.TAG_PATTERN.match(tag):
        flash("Type a tag like CAM-001.", "error")
        return redirect(url_for("equipment.scan"))
    return redirect(url_for("equipment.scanned", tag=tag))


@bp.get("/equipment/scan")
@roles_required(Role.OFFICE)
def scan():
    return render_template("equipment/scan.html", form=ScanForm())


# Loans --------------------------------------------------------------------------------------------


@bp.route("/equipment/<int:asset_id>/check-out", methods=["GET", "POST"])
@roles_required(Role.OFFICE)
def check_out(asset_id: int):
    asset = assets.get_asset(db.session, asset_id)
    form = CheckOutForm()
    form.due_on.description = (
        f"The school day it should be back by. The usual loan ends on {format_date(loans.default_due_on(db.session))}."
    )
    form.borrower_id.choices = [SelectChoice(0, "Choose a person")] + [
        SelectChoice(u.id, u.display_name) for u in loans.borrowers(db.session)
    ]
    if form.validate_on_submit():
        with refused(form) as invalid, refused(None, Conflict, flash_as=None) as clash:
            loan = loans.check_out(
                db.session,
                current_user,
                asset.id,
                borrower_id=form.borrower_id.data or None,
                due_on=form.due_on.data,
                purpose=form.purpose.data or "",
                condition=form.condition.data or "",
                accepted_in_person=bool(form.terms_accepted.data),
            )
        terms = loan_terms(db.session)
        if invalid:
            return render_template("equipment/check_out.html", form=form, asset=asset, terms=terms), 422
        if clash:
            return render_template("equipment/check_out.html", form=form, asset=asset, terms=terms, problem=clash.message), 409
        db.session.commit()
        asked = "" if loan.terms_accepted else f" {loan.borrower.display_name} has been asked to accept the terms on their phone."
        flash(f"{asset.tag} is lent to {loan.borrower.display_name} until {loan.due_on:%d/%m/%Y}.{asked}", "success")
        return redirect(url_for("equipment.show", asset_id=asset.id))
    if form.errors.get("due_on"):
        form.due_on.errors = [loans.due_date_example(db.session)]
    elif request.method == "GET":
        form.due_on.data = loans.default_due_on(db.session)
    problem = None
    booking = booking_loans.collectable_booking(db.session, asset_id=asset.id)
    if (current := loans.open_loan_for(db.session, asset.id)) is not None:
        problem = f"{asset.tag} is on loan to {current.borrower.display_name}. Check it in before lending it again."
    elif asset.status in loans.NOT_LENDABLE:
        problem = f"{asset.tag} {loans.NOT_LENDABLE[asset.status]}, so it cannot be lent."
    return render_template(
        "equipment/check_out.html",
        form=form,
        asset=asset,
        terms=loan_terms(db.session),
        problem=problem,
        booking=booking if current is None else None,
        slot=booking_loans.slot_text(db.session, booking) if booking else "",
        collect_form=CollectForm(),
    ), 422 if form.errors else 200


@bp.route("/equipment/<int:asset_id>/check-in", methods=["GET", "POST"])
@roles_required(Role.OFFICE)
def check_in(asset_id: int):
    asset = assets.get_asset(db.session, asset_id)
    form = CheckInForm()
    open_loan = loans.open_loan_for(db.session, asset.id)
    if form.validate_on_submit():
        with refused(form) as invalid, refused(None, Conflict, flash_as=None) as clash:
            loan = loans.check_in(
                db.session, current_user, asset.id, condition=form.condition.data or "", damaged=bool(form.damaged.data)
            )
        if invalid:
            return render_template("equipment/check_in.html", form=form, asset=asset, loan=open_loan), 422
        if clash:
            return render_template("equipment/check_in.html", form=form, asset=asset, loan=None, problem=clash.message), 409
        db.session.commit()
        note = " It is marked in repair." if loan.damaged else ""
        flash(f"{asset.tag} is back from {loan.borrower.display_name}.{note}", "success")
        return redirect(url_for("equipment.show", asset_id=asset.id))
    problem = None if open_loan else f"{asset.tag} is not on loan, so there is nothing to check in."
    return render_template("equipment/check_in.html", form=form, asset=asset, loan=open_loan, problem=problem)


def _loans_page(overdue_only: bool):
    today = local_today()
    # Clamped: a huge page number would overflow the database's OFFSET (a 500, not an empty page).
    page = min(max(1, request.args.get("page", 1, type=int) or 1), 20_000)
    found = loans.open_loans(
        db.session, overdue_only=overdue_only, today=today, limit=loans.PAGE_SIZE + 1, offset=(page - 1) * loans.PAGE_SIZE
    )
    return render_template(
        "equipment/loans.html",
        loans=found[: loans.PAGE_SIZE],
        has_next=len(found) > loans.PAGE_SIZE,
        page=page,
        today=today,
        overdue_only=overdue_only,
        endpoint=request.endpoint,
    )


@bp.get("/equipment/loans")
@roles_required(Role.OFFICE)
def loan_list():
    return _loans_page(overdue_only=False)


@bp.get("/equipment/overdue")
@roles_required(Role.OFFICE)
def overdue():
    return _loans_page(overdue_only=True)


@bp.get("/my-loans")
@login_required
def my_loans():
    return render_template("equipment/my_loans.html", loans=loans.loans_of(db.session, current_user), today=local_today())


@bp.route("/loans/<int:loan_id>/terms", methods=["GET", "POST"])
@login_required
def loan_terms_page(loan_id: int):
    """The borrower reads the terms kept with their loan and accepts them; anyone else finds no such loan."""
    loan = loans.borrowers_loan(db.session, current_user, loan_id)
    form = AcceptTermsForm()
    if form.validate_on_submit():
        with refused(None, Conflict, flash_as=None) as clash:
            accepted = kit_loans.accept_terms_together(db.session, current_user, loan.id)
        if clash:
            return render_template("equipment/loan_terms.html", loan=loan, form=form, problem=clash.message), 409
        db.session.commit()
        what = loan.asset.tag if len(accepted) == 1 else f"all {len(accepted)} items lent to you together"
        flash(f"Thank you: you have accepted the terms for {what}.", "success")
        return redirect(url_for("equipment.my_loans"))
    together = kit_loans.lent_together(db.session, loan) if not loan.terms_accepted and loan.returned_at is None else [loan]
    return render_template("equipment/loan_terms.html", loan=loan, form=form, today=local_today(), together=together)


# Labels --------------------------------------------------------------------------------------------


@bp.get("/equipment/labels")
@roles_required(Role.OFFICE)
def labels():
    """Choose assets (a GET form), then print the sheet from the browser."""
    chosen_ids = [value for value in request.args.getlist("asset", type=int) if is_id(value)][: LABELS_PER_SHEET * 20]
    location = request.args.get("location", "")[:80]
    skip = min(max(request.args.get("skip", 0, type=int) or 0, 0), LABELS_PER_SHEET - 1)
    chosen = assets.assets_by_ids(db.session, chosen_ids)
    if chosen:
        labels_ = [None] * skip + [{"asset": asset, "qr": qr_svg(label_url(asset.tag))} for asset in chosen]
        return render_template("equipment/labels_sheet.html", sheets=sheets(labels_), count=len(chosen))
    candidates = assets.search_assets(db.session, request.args.get("q", "")[:100], location=location, limit=500)
    return render_template(
        "equipment/labels_choose.html",
        candidates=candidates,
        locations=assets.home_locations(db.session),
        location=location,
        q=request.args.get("q", "")[:100],
        per_sheet=LABELS_PER_SHEET,
        nothing_chosen="asset" in request.args,
    )


# CSV -----------------------------------------------------------------------------------------------


@bp.route("/equipment/import", methods=["GET", "POST"])
@roles_required(Role.OFFICE)
def import_assets():
    form = ImportForm()
    if form.validate_on_submit():
        with refused(form) as unreadable:
            text = upload_text(form.file.data)
        if unreadable:
            return render_template("equipment/import.html", form=form, columns=asset_csv.IMPORT_COLUMNS), 422
        with refused(None, asset_csv.ImportRefused, flash_as=None) as refusal:
            created = asset_csv.import_assets(db.session, current_user, text)
        if refusal:
            return render_template(
                "equipment/import.html", form=form, columns=asset_csv.IMPORT_COLUMNS, refused=refusal.error
            ), 422
        db.session.commit()
        flash(f"{len(created)} asset{'s' if len(created) != 1 else ''} imported.", "success")
        return redirect(url_for("equipment.index"))
    return render_template("equipment/import.html", form=form, columns=asset_csv.IMPORT_COLUMNS), 422 if form.errors else 200


@bp.get("/equipment/import/template.csv")
@roles_required(Role.OFFICE)
def import_template():
    return _csv(asset_csv.import_template(), "lanyard-assets-template.csv")


@bp.get("/equipment/export/assets.csv")
@roles_required(Role.OFFICE)
def export_assets():
    record_read("export.downloaded", details={"export": "assets"})
    return _csv(asset_csv.export_assets(db.session), f"lanyard-assets-{local_today():%Y-%m-%d}.csv")


@bp.get("/equipment/export/loans.csv")
@roles_required(Role.OFFICE)
def export_loans():
    record_read("export.downloaded", details={"export": "loans", "open_only": request.args.get("open") == "1"})
    open_only = request.args.get("open") == "1"
    return _csv(asset_csv.export_loans(db.session, open_only=open_only), f"lanyard-loans-{local_today():%Y-%m-%d}.csv")


# Stock-takes ----------------------------------------------------------------------------------------


def _location_choices() -> list[SelectChoice]:
    return [SelectChoice("", "Every location")] + [SelectChoice(loc, loc) for loc in assets.home_locations(db.session)]


@bp.get("/equipment/stocktakes")
@roles_required(Role.OFFICE)
def stocktake_list():
    form = StartStockTakeForm()
    form.location.choices = _location_choices()
    return render_template(
        "equipment/stocktakes.html",
        form=form,
        open_stocktake=stocktakes.open_stocktake(db.session),
        recent=stocktakes.recent_stocktakes(db.session),
    )


@bp.post("/equipment/stocktakes")
@roles_required(Role.OFFICE)
def start_stocktake():
    form = StartStockTakeForm()
    form.location.choices = _location_choices()
    if not form.validate_on_submit():
        return redirect(url_for("equipment.stocktake_list"))
    with refused(form, ValidationFailed, Conflict, summary=False) as refusal:
        take = stocktakes.start_stocktake(db.session, current_user, form.location.data or "")
    if refusal.error is not None:
        error = refusal.error
        return render_template(
            "equipment/stocktakes.html",
            form=form,
            open_stocktake=stocktakes.open_stocktake(db.session),
            recent=stocktakes.recent_stocktakes(db.session),
            problem=error.message,
        ), error.status
    db.session.commit()
    return redirect(url_for("equipment.stocktake", stocktake_id=take.id))


@bp.get("/equipment/stocktakes/<int:stocktake_id>")
@roles_required(Role.OFFICE)
def stocktake(stocktake_id: int):
    take = stocktakes.get_stocktake(db.session, stocktake_id)
    if take.is_open:
        return render_template(
            "equipment/stocktake_scan.html",
            take=take,
            scans=stocktakes.scans_of(db.session, take.id),
            tally=stocktakes.scan_tally(db.session, take),
            form=ScanForm(),
            confirm_form=ConfirmForm(),
            is_expected=lambda asset: stocktakes.is_expected(take, asset),
        )
    return render_template("equipment/stocktake_report.html", take=take, report=stocktakes.stocktake_report(db.session, take))


@bp.post("/equipment/stocktakes/<int:stocktake_id>/scan")
@roles_required(Role.OFFICE)
def stocktake_scan(stocktake_id: int):
    """The no-JavaScript path of the scanner, and the "record in stock-take" button on an asset page."""
    form = ScanForm()
    if not form.validate_on_submit():
        abort(400)
    with refused(None, flash_as=None) as refusal:
        result = stocktakes.record_scan(db.session, current_user, stocktake_id, form.tag.data or "", form.condition.data or "")
    if refusal:
        flash(refusal.field_errors.get("tag", [refusal.message])[0], "error")
        return redirect(url_for("equipment.stocktake", stocktake_id=stocktake_id))
    db.session.commit()
    flash(result.message, "success" if result.expected else "error")
    if request.form.get("back") == "asset" and result.scan.asset_id:
        return redirect(url_for("equipment.show", asset_id=result.scan.asset_id))
    return redirect(url_for("equipment.stocktake", stocktake_id=stocktake_id))


@bp.route("/equipment/stocktakes/<int:stocktake_id>/close", methods=["GET", "POST"])
@roles_required(Role.OFFICE)
def close_stocktake(stocktake_id: int):
    take = stocktakes.get_stocktake(db.session, stocktake_id)
    if request.method == "GET" and take.is_open:
        tally = stocktakes.scan_tally(db.session, take)
        return confirmation_page(
            title=f"Close stock-take #{take.id}?",
            consequences=f"{tally.found} of {tally.expected} expected items have been found. Closing marks the rest as "
            "missing or on loan, and no more labels can be scanned into it.",
            button="Close and see the report",
            cancel_url=url_for("equipment.stocktake", stocktake_id=take.id),
            danger=False,
        )
    if request.method == "POST" and take.is_open and not confirmed():
        return ask_first()
    if request.method == "POST" and ConfirmForm().validate_on_submit():
        stocktakes.close_stocktake(db.session, current_user, stocktake_id)
        db.session.commit()
        flash("Stock-take closed. Here is its report.", "success")
    return redirect(url_for("equipment.stocktake", stocktake_id=stocktake_id))


@bp.get("/equipment/stocktakes/<int:stocktake_id>/report.csv")
@roles_required(Role.OFFICE)
def stocktake_csv(stocktake_id: int):
    take = stocktakes.get_stocktake(db.session, stocktake_id)
    if take.is_open:
        raise Conflict("Close the stock-take before downloading its report.")
    record_read("export.downloaded", "stocktake", take.id, {"export": "stocktake"})
    return _csv(asset_csv.export_stocktake(db.session, take), f"lanyard-stocktake-{take.id}.csv")
