"""My devices (J1) and the office's view of the whole register."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.access import roles_required
from app.devices.forms import ConfirmForm, DeviceForm, ReportLostForm
from app.extensions import db
from app.forms_support import refused
from app.models import DeviceStatus, Role
from app.navigation import register_nav
from app.read_audit import record_read, search_details
from app.services import devices, policy
from app.services.errors import AlreadyRegistered

bp = Blueprint("devices", __name__)
register_nav("My devices", "devices.mine", (Role.STAFF,), order=10)
register_nav("Register", "devices.register", (Role.OFFICE,), order=60)


@bp.get("/devices")
@login_required
def mine():
    everything = devices.devices_of(db.session, current_user, include_retired=True)
    return render_template(
        "devices/mine.html",
        devices=[d for d in everything if d.is_current],
        retired=[d for d in everything if not d.is_current],
        declared_none=policy.has_declared_no_device(db.session, current_user),
        confirm=ConfirmForm(),
    )


@bp.route("/devices/new", methods=["GET", "POST"])
@login_required
def add():
    form = DeviceForm()
    if form.validate_on_submit():
        with refused(form) as invalid, refused(None, AlreadyRegistered, flash_as=None) as already:
            device = devices.register_device(db.session, current_user, form.details())
        if isinstance(already.error, AlreadyRegistered):
            flash(f"{already.message} Here it is.", "info")
            return redirect(url_for("devices.show", device_id=already.error.device_id), 303)
        if invalid:
            return render_template("devices/form.html", form=form, device=None), 422
        db.session.commit()
        flash(f"{device.name} is registered.", "success")
        return redirect(url_for("devices.mine"))
    return render_template("devices/form.html", form=form, device=None), 422 if form.errors else 200


@bp.get("/devices/<int:device_id>")
@login_required
def show(device_id: int):
    device = devices.owned_device(db.session, current_user, device_id)
    return render_template("devices/show.html", device=device, confirm=ConfirmForm())


@bp.route("/devices/<int:device_id>/edit", methods=["GET", "POST"])
@login_required
def edit(device_id: int):
    device = devices.owned_device(db.session, current_user, device_id)
    form = DeviceForm(obj=None if request.method == "POST" else device)
    if request.method == "GET":
        form.imei1.data, form.imei2.data = device.imei1 or "", device.imei2 or ""
    if form.validate_on_submit():
        with refused(form) as refusal:
            devices.update_device(db.session, current_user, device, form.details())
        if refusal:
            return render_template("devices/form.html", form=form, device=device), 422
        db.session.commit()
        flash("Changes saved.", "success")
        return redirect(url_for("devices.show", device_id=device.id))
    return render_template("devices/form.html", form=form, device=device), 422 if form.errors else 200


@bp.post("/devices/<int:device_id>/retire")
@login_required
def retire(device_id: int):
    device = devices.owned_device(db.session, current_user, device_id)
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("devices.show", device_id=device.id))
    devices.retire_device(db.session, current_user, device)
    db.session.commit()
    flash(f"{device.name} is retired from your register.", "success")
    return redirect(url_for("devices.mine"))


@bp.route("/devices/<int:device_id>/report-lost", methods=["GET", "POST"])
@login_required
def report_lost(device_id: int):
    device = devices.owned_device(db.session, current_user, device_id)
    form = ReportLostForm()
    if form.validate_on_submit():
        with refused(form) as refusal:
            devices.report_lost(
                db.session,
                current_user,
                device,
                stolen=form.what_happened.data == "stolen",
                crime_reference=form.crime_reference.data or "",
                notes=form.notes.data or "",
            )
        if refusal:
            return render_template("devices/report_lost.html", form=form, device=device), 422
        db.session.commit()
        return redirect(url_for("devices.lost", device_id=device.id))
    return render_template("devices/report_lost.html", form=form, device=device), 422 if form.errors else 200


@bp.get("/devices/<int:device_id>/lost")
@login_required
def lost(device_id: int):
    device = devices.owned_device(db.session, current_user, device_id)
    if device.status not in (DeviceStatus.LOST.value, DeviceStatus.STOLEN.value):
        return redirect(url_for("devices.show", device_id=device.id))
    return render_template("devices/lost.html", device=device, confirm=ConfirmForm())


@bp.post("/devices/<int:device_id>/found")
@login_required
def found(device_id: int):
    device = devices.owned_device(db.session, current_user, device_id)
    if ConfirmForm().validate_on_submit():
        devices.mark_found(db.session, current_user, device)
        db.session.commit()
        flash(f"Good news: {device.name} is marked as found.", "success")
    return redirect(url_for("devices.show", device_id=device.id))


# The office's view ------------------------------------------------------------------------------


@bp.get("/office/devices")
@roles_required(Role.OFFICE)
def register():
    text = request.args.get("q", "")[:100]
    status = request.args.get("status", "")
    if status not in {s.value for s in DeviceStatus}:
        status = ""
    if text.strip():
        record_read("device.register_searched", details=search_details(text))
    duplicate_attempts = devices.duplicate_imei_attempts(db.session)
    return render_template(
        "devices/register.html",
        devices=devices.search_register(db.session, text, status),
        page_size=devices.REGISTER_PAGE,
        q=text,
        status=status,
        statuses=list(DeviceStatus),
        duplicate_attempts=duplicate_attempts,
    )


@bp.get("/office/devices/<int:device_id>")
@roles_required(Role.OFFICE)
def office_show(device_id: int):
    return _office_device_page(devices.register_device_for_office(db.session, device_id), revealed=False)


@bp.post("/office/devices/<int:device_id>/reveal")
@roles_required(Role.OFFICE)
def office_reveal(device_id: int):
    """Show the device's full IMEI(s): a POST (no link, prefetch or cache can do it), audited by its last 4 digits."""
    device = devices.register_device_for_office(db.session, device_id)
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("devices.office_show", device_id=device.id), 303)
    record_read(
        "device.imei_revealed",
        "personal_device",
        device.id,
        {"imei_last4": [imei[-4:] for imei in (device.imei1, device.imei2) if imei]},
        related={"user": device.owner_id},
    )
    return _office_device_page(device, revealed=True)


def _office_device_page(device, *, revealed: bool):
    history = devices.device_history(db.session, device)
    return render_template("devices/office_show.html", device=device, history=history, revealed=revealed, confirm=ConfirmForm())
