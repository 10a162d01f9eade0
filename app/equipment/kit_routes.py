"""Kits and bookings at the office (issue 17): lend a whole kit in one scan, take it back naming what is
missing, and hand a booked item to the person who booked it with one tap. Each route: parse, authorise,
call one service, commit, respond; the routes live on the equipment blueprint."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import SelectChoice

from app.access import roles_required
from app.clock import format_date, local_today
from app.equipment.forms import CheckOutForm, CollectForm, KitCheckInForm
from app.equipment.routes import bp
from app.extensions import db
from app.forms_support import refused
from app.ids import is_id
from app.models import Role
from app.services import booking_loans, bookings, kit_loans, loans
from app.services.errors import Conflict
from app.services.school_settings import loan_terms


def kit_page(kit, scanned: bool = False, problem: str | None = None, status: int = 200):
    """What a kit's label opens for the office: its members, and the action that fits."""
    members = kit_loans.kit_state(db.session, kit)
    out = [m for m in members if m.loan is not None]
    booking = booking_loans.collectable_booking(db.session, kit_id=kit.id)
    return render_template(
        "equipment/kit.html",
        kit=kit,
        members=members,
        out=out,
        booking=booking,
        slot=booking_loans.slot_text(db.session, booking) if booking else "",
        collect_form=CollectForm(),
        terms=loan_terms(db.session),
        scanned=scanned,
        problem=problem,
        today=local_today(),
    ), status


def _borrower_form(form: CheckOutForm) -> CheckOutForm:
    form.due_on.description = (
        f"The school day it should all be back by. The usual loan ends on {format_date(loans.default_due_on(db.session))}."
    )
    form.borrower_id.choices = [SelectChoice(0, "Choose a person")] + [
        SelectChoice(u.id, u.display_name) for u in loans.borrowers(db.session)
    ]
    return form


@bp.route("/equipment/kits/<int:kit_id>/check-out", methods=["GET", "POST"])
@roles_required(Role.OFFICE)
def kit_check_out(kit_id: int):
    kit = bookings.get_kit(db.session, kit_id)
    form = _borrower_form(CheckOutForm())
    members = kit_loans.kit_state(db.session, kit)
    if form.validate_on_submit():
        with refused(form) as invalid, refused(None, Conflict, flash_as=None) as clash:
            made = kit_loans.check_out_kit(
                db.session,
                current_user,
                kit.id,
                borrower_id=form.borrower_id.data or None,
                due_on=form.due_on.data,
                purpose=form.purpose.data or "",
                condition=form.condition.data or "",
                accepted_in_person=bool(form.terms_accepted.data),
            )
        page = {"form": form, "kit": kit, "members": members, "terms": loan_terms(db.session)}
        if invalid:
            return render_template("equipment/kit_check_out.html", **page), 422
        if clash:
            return render_template("equipment/kit_check_out.html", problem=clash.message, **page), 409
        db.session.commit()
        first = made[0]
        asked = (
            "" if first.terms_accepted else f" {first.borrower.display_name} has been asked to accept the terms on their phone."
        )
        flash(
            f"All {len(made)} items of {kit.name} are lent to {first.borrower.display_name} until {format_date(first.due_on)}.{asked}",
            "success",
        )
        return redirect(url_for("equipment.scanned", tag=kit.tag))
    if form.errors.get("due_on"):
        form.due_on.errors = [loans.due_date_example(db.session)]
    elif request.method == "GET":
        form.due_on.data = loans.default_due_on(db.session)
    busy = [m.asset.tag for m in members if m.loan is not None or m.asset.status in loans.NOT_LENDABLE]
    problem = f"Not everything is here to lend: {kit_loans.tag_line(busy)}. Check those in first." if busy else None
    return render_template(
        "equipment/kit_check_out.html", form=form, kit=kit, members=members, terms=loan_terms(db.session), problem=problem
    ), 422 if form.errors else 200


def _returned_rows() -> tuple[list[int], dict[int, str], list[int]]:
    """The check-in form's member rows: ticked as back, their condition, ticked as damaged."""
    back = [n for n in request.form.getlist("back", type=int) if is_id(n)]
    damaged = [n for n in request.form.getlist("damaged", type=int) if is_id(n)]
    conditions = {}
    for key, value in request.form.items():
        if key.startswith("condition-") and key[10:].isdigit() and is_id(int(key[10:])) and value.strip():
            conditions[int(key[10:])] = value
    return back, conditions, damaged


@bp.route("/equipment/kits/<int:kit_id>/check-in", methods=["GET", "POST"])
@roles_required(Role.OFFICE)
def kit_check_in(kit_id: int):
    kit = bookings.get_kit(db.session, kit_id)
    form = KitCheckInForm()
    members = kit_loans.kit_state(db.session, kit)
    out = [m for m in members if m.loan is not None]
    if form.validate_on_submit():
        back, conditions, damaged = _returned_rows()
        with refused(None, flash_as=None) as invalid, refused(None, Conflict, flash_as=None) as clash:
            result = kit_loans.check_in_kit(
                db.session, current_user, kit.id, returned_ids=back, conditions=conditions, damaged_ids=damaged
            )
        page = {"form": form, "kit": kit, "out": out, "ticked": set(back), "conditions": conditions, "damaged": set(damaged)}
        refusal = invalid if invalid else clash
        if refusal.error is not None:
            return render_template("equipment/kit_check_in.html", problem=refusal.message, **page), refusal.error.status
        db.session.commit()
        note = f" {len(damaged)} marked for repair." if damaged else ""
        flash(f"{kit.name} checked in. {result.summary}{note}", "success" if not result.missing else "error")
        return redirect(url_for("equipment.scanned", tag=kit.tag))
    problem = None if out else f"Nothing in {kit.name} is on loan, so there is nothing to check in."
    return render_template(
        "equipment/kit_check_in.html",
        form=form,
        kit=kit,
        out=out,
        ticked={m.asset.id for m in out},
        conditions={},
        damaged=set(),
        problem=problem,
    )


@bp.post("/equipment/bookings/<int:booking_id>/collect")
@roles_required(Role.OFFICE)
def collect_booking(booking_id: int):
    """The one tap after scanning a booked label: lend it to the person who booked it, due at the slot's end."""
    form = CollectForm()
    if not form.validate_on_submit():
        flash("The page had expired; scan the label again.", "error")
        return redirect(url_for("equipment.scan"))
    with refused(None, Conflict) as clash:
        made = booking_loans.collect(db.session, current_user, booking_id, accepted_in_person=bool(form.terms_accepted.data))
    if clash:
        return redirect(url_for("equipment.scan"))
    db.session.commit()
    first = made[0]
    things = f"{len(made)} items" if len(made) > 1 else f"{first.asset.tag} {first.asset.name}"
    asked = "" if first.terms_accepted else f" {first.borrower.display_name} has been asked to accept the terms on their phone."
    flash(f"{things} lent to {first.borrower.display_name} until the end of their booking.{asked}", "success")
    return redirect(url_for("equipment.show", asset_id=first.asset_id) if len(made) == 1 else url_for("equipment.loan_list"))
