"""Booking pages (issue 17): staff book equipment and kits and cancel their bookings; the office books for
others, lists a day's bookings, says who may book what and manages kits. Each route: parse, authorise,
call one service, commit, respond (PRG)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from wtforms import SelectChoice

from app.access import roles_required
from app.bookings.forms import BookableForm, BookingForm, DayForm, KitForm, MemberForm
from app.clock import local_today, to_local
from app.confirmations import ask_first, confirmation_page, confirmed
from app.devices.forms import ConfirmForm
from app.equipment.labels import label_url, qr_svg
from app.extensions import db
from app.forms_support import refused
from app.models import Role
from app.navigation import register_nav
from app.services import assets, bookings, loans
from app.services.errors import Conflict, Forbidden
from app.services.periods import school_periods

bp = Blueprint("bookings", __name__)
register_nav("Bookings", "bookings.mine", (Role.STAFF,), order=18)
register_nav("Day's bookings", "bookings.day", (Role.OFFICE, Role.ADMIN), order=58)

OFFICE = (Role.OFFICE, Role.ADMIN)


def _target(thing: str) -> tuple[int | None, int | None]:
    """(asset id, kit id) from the form's ``asset-5`` or ``kit-3``; anything else chooses nothing (the service says so)."""
    kind, _, number = (thing or "").partition("-")
    ident = int(number) if number.isdigit() and len(number) < 10 else None
    return (ident if kind == "asset" else None), (ident if kind == "kit" else None)


def _booking_form() -> BookingForm:
    form = BookingForm()
    kits = bookings.bookable_kits(db.session, current_user)
    things = bookings.bookable_assets(db.session, current_user)
    form.thing.choices = (
        [SelectChoice("", "Choose equipment or a kit")]
        + [SelectChoice(f"kit-{k.id}", f"{k.name} (kit of {len(k.members)})") for k in kits]
        + [SelectChoice(f"asset-{a.id}", f"{a.name} ({a.tag})") for a in things]
    )
    form.periods.choices = [
        SelectChoice(p.label, f"{p.label} {p.starts:%H:%M}-{p.ends:%H:%M}") for p in school_periods(db.session)
    ]
    if bookings.is_office(current_user):
        form.for_user_id.choices = [SelectChoice(current_user.id, f"{current_user.display_name} (me)")] + [
            SelectChoice(u.id, u.display_name) for u in loans.borrowers(db.session) if u.id != current_user.id
        ]
    return form


def _prefill(form: BookingForm) -> None:
    """A free cell of the week view links here with the thing, the day and the period filled in."""
    wanted = request.args.get("thing", "")
    if any(choice.value == wanted for choice in form.thing.choices):
        form.thing.data = wanted
    try:
        form.day.data = date.fromisoformat(request.args.get("day", ""))
    except ValueError:
        form.day.data = local_today()
    period = request.args.get("period", "")
    if any(choice.value == period for choice in form.periods.choices):
        form.periods.data = [period]


def _slot(booking) -> str:
    """Thursday 26/11/2026, P3-P4 (11:10-13:10), for the templates."""
    return bookings.describe_slot(db.session, booking.starts_at, booking.ends_at, booking.periods)


@bp.get("/bookings")
@login_required
def mine():
    return render_template("bookings/mine.html", bookings=bookings.my_bookings(db.session, current_user), slot=_slot)


@bp.route("/bookings/new", methods=["GET", "POST"])
@login_required
def new():
    form = _booking_form()
    if request.method == "GET":
        _prefill(form)
    if form.validate_on_submit():
        office = bookings.is_office(current_user)
        asset_id, kit_id = _target(form.thing.data or "")
        with refused(form) as invalid, refused(form, Conflict, Forbidden, summary=False) as clash:
            booking = bookings.book(
                db.session,
                current_user,
                asset_id=asset_id,
                kit_id=kit_id,
                for_user_id=(form.for_user_id.data or None) if office else None,
                day=form.day.data,
                periods=form.periods.data or [],
                starts=form.starts.data,
                ends=form.ends.data,
                purpose=form.purpose.data or "",
            )
        if invalid:
            return render_template("bookings/new.html", form=form), 422
        if clash:
            return render_template("bookings/new.html", form=form, problem=clash.message), 403 if isinstance(
                clash.error, Forbidden
            ) else 409
        db.session.commit()
        when = bookings.describe_slot(db.session, booking.starts_at, booking.ends_at, booking.periods)
        whom = "" if booking.booked_for_id == current_user.id else f" for {booking.booked_for.display_name}"
        flash(f"Booked: {booking.thing_name}{whom}, {when}.", "success")
        return redirect(
            url_for("bookings.day", day=to_local(booking.starts_at).date().isoformat()) if whom else url_for("bookings.mine")
        )
    return render_template("bookings/new.html", form=form), 422 if form.errors else 200


@bp.route("/bookings/<int:booking_id>/cancel", methods=["GET", "POST"])
@login_required
def cancel(booking_id: int):
    booking = bookings.get_booking(db.session, current_user, booking_id)
    back = url_for("bookings.mine") if booking.booked_for_id == current_user.id else url_for("bookings.day")
    if request.method == "GET":
        when = bookings.describe_slot(db.session, booking.starts_at, booking.ends_at, booking.periods)
        return confirmation_page(
            title=f"Cancel the booking of {booking.thing_name}?",
            consequences=f"{booking.booked_for.display_name}'s booking for {when} is cancelled and the slot is free "
            "for others to book.",
            button="Cancel the booking",
            cancel_url=back,
        )
    if not confirmed():
        return ask_first()
    if ConfirmForm().validate_on_submit():
        with refused(None, Conflict) as clash:
            bookings.cancel_booking(db.session, current_user, booking.id)
        if not clash:
            db.session.commit()
            flash(f"Booking of {booking.thing_name} cancelled.", "success")
    return redirect(back)


@bp.get("/bookings/day")
@roles_required(*OFFICE)
def day():
    form = DayForm(request.args)
    chosen: date = (form.day.data if form.validate() else None) or local_today()
    return render_template(
        "bookings/day.html", day=chosen, bookings=bookings.bookings_on_day(db.session, current_user, chosen), slot=_slot
    )


# Who may book an asset -----------------------------------------------------------------------------


@bp.post("/equipment/<int:asset_id>/bookable")
@roles_required(*OFFICE)
def asset_bookable(asset_id: int):
    asset = assets.get_asset(db.session, asset_id)
    form = BookableForm()
    if form.validate_on_submit():
        with refused(None) as invalid:
            bookings.set_bookable(db.session, current_user, asset_id=asset.id, bookable_by=form.bookable_by.data or None)
        if not invalid:
            db.session.commit()
            flash(
                f"{asset.tag}: {asset.bookable_label.lower()} may book it."
                if asset.bookable_by
                else f"{asset.tag} is not bookable.",
                "success",
            )
    return redirect(url_for("equipment.show", asset_id=asset.id))


# Kits ----------------------------------------------------------------------------------------------


@bp.route("/bookings/kits", methods=["GET", "POST"])
@roles_required(*OFFICE)
def kits():
    form = KitForm()
    if form.validate_on_submit():
        with refused(form) as invalid:
            kit = bookings.create_kit(
                db.session,
                current_user,
                name=form.name.data or "",
                tag=form.tag.data or "",
                description=form.description.data or "",
                bookable_by=form.bookable_by.data or None,
            )
        if not invalid:
            db.session.commit()
            flash(f"Kit {kit.name} created. Now add what is in it.", "success")
            return redirect(url_for("bookings.kit", kit_id=kit.id))
    status = 422 if form.errors else 200
    return render_template("bookings/kits.html", kits=bookings.list_kits(db.session, include_retired=True), form=form), status


def _kit_page(kit, member_form: MemberForm, status: int = 200, problem: str = ""):
    bookable = BookableForm(formdata=None, bookable_by=kit.bookable_by or "")
    return render_template(
        "bookings/kit.html",
        kit=kit,
        form=member_form,
        bookable=bookable,
        remove_form=ConfirmForm(),
        qr=qr_svg(label_url(kit.tag)),
        problem=problem,
    ), status


@bp.route("/bookings/kits/<int:kit_id>", methods=["GET", "POST"])
@roles_required(*OFFICE)
def kit(kit_id: int):
    found = bookings.get_kit(db.session, kit_id)
    form = MemberForm()
    if form.validate_on_submit():
        with refused(form) as invalid, refused(form, Conflict, summary=False) as clash:
            member = bookings.add_kit_member(db.session, current_user, found.id, form.tag.data or "")
        if invalid:
            return _kit_page(found, form, 422)
        if clash:
            return _kit_page(found, form, 409, clash.message)
        db.session.commit()
        flash(f"{member.asset.tag} added to {found.name}.", "success")
        return redirect(url_for("bookings.kit", kit_id=found.id))
    return _kit_page(found, form, 422 if form.errors else 200)


@bp.post("/bookings/kits/<int:kit_id>/members/<int:asset_id>/remove")
@roles_required(*OFFICE)
def remove_member(kit_id: int, asset_id: int):
    found = bookings.get_kit(db.session, kit_id)
    if ConfirmForm().validate_on_submit():
        bookings.remove_kit_member(db.session, current_user, found.id, asset_id)
        db.session.commit()
        flash("Taken out of the kit.", "success")
    return redirect(url_for("bookings.kit", kit_id=found.id))


@bp.post("/bookings/kits/<int:kit_id>/bookable")
@roles_required(*OFFICE)
def kit_bookable(kit_id: int):
    found = bookings.get_kit(db.session, kit_id)
    form = BookableForm()
    if form.validate_on_submit():
        with refused(None) as invalid:
            bookings.set_bookable(db.session, current_user, kit_id=found.id, bookable_by=form.bookable_by.data or None)
        if not invalid:
            db.session.commit()
            flash(f"{found.name}: {found.bookable_label.lower()}.", "success")
    return redirect(url_for("bookings.kit", kit_id=found.id))


@bp.route("/bookings/kits/<int:kit_id>/retire", methods=["GET", "POST"])
@roles_required(*OFFICE)
def retire_kit(kit_id: int):
    found = bookings.get_kit(db.session, kit_id)
    if request.method == "GET":
        return confirmation_page(
            title=f"Retire the kit {found.name}?",
            consequences="Nobody can book it any more, and its equipment is free to join another kit or be booked "
            "on its own. Bookings still to come must be cancelled first.",
            button="Retire the kit",
            cancel_url=url_for("bookings.kit", kit_id=found.id),
        )
    if not confirmed():
        return ask_first()
    if ConfirmForm().validate_on_submit():
        with refused(None, Conflict) as clash:
            bookings.retire_kit(db.session, current_user, found.id)
        if not clash:
            db.session.commit()
            flash(f"Kit {found.name} retired.", "success")
    return redirect(url_for("bookings.kit", kit_id=found.id))
