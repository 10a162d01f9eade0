"""Admin: import staff from a CSV file (preview, then apply), and the SCIM provisioning tokens."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, redirect, render_template, url_for
from flask_login import current_user

from app.access import roles_required
from app.devices.forms import ConfirmForm
from app.extensions import db
from app.forms_support import refused
from app.models import Role
from app.provisioning.forms import ApplyImportForm, ScimTokenForm, StaffFileForm
from app.services import provisioning, staff_import
from app.services import staff_terms as _staff_terms  # noqa: F401  (the end-date job and its setting)
from app.services.csv_upload import upload_text
from app.services.errors import Conflict, ValidationFailed

bp = Blueprint("provisioning", __name__, url_prefix="/admin")


def _link(token: str) -> str:
    return f"{current_app.config['BASE_URL']}{url_for('auth.set_password', token=token)}"


def _import_page(form: StaffFileForm, status: int = 200, refused=None):
    return render_template("provisioning/import.html", form=form, refused=refused), status


@bp.route("/staff/import", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def staff_import_page():
    form = StaffFileForm()
    if not form.validate_on_submit():
        return _import_page(form, 422 if form.errors else 200)
    with refused(form) as unreadable:
        text = upload_text(form.file.data, staff_import.MAX_BYTES)
    if unreadable:
        return _import_page(form, 422)
    with refused(None, staff_import.ImportRefused, flash_as=None) as refusal:
        plan = staff_import.plan_import(db.session, current_user, text)
    if refusal:
        return _import_page(form, 422, refused=refusal.error)
    db.session.rollback()  # the preview changes nothing
    apply_form = ApplyImportForm(formdata=None, text=text, digest=plan.digest)
    return render_template("provisioning/preview.html", plan=plan, form=apply_form)


@bp.post("/staff/import/apply")
@roles_required(Role.ADMIN)
def staff_import_apply():
    form = ApplyImportForm()
    if not form.validate_on_submit():
        flash("The form had expired. Please preview the file again.", "error")
        return redirect(url_for("provisioning.staff_import_page"))
    with refused(None, staff_import.ImportRefused, Conflict, ValidationFailed, flash_as=None) as refusal:
        result = staff_import.apply_import(
            db.session,
            current_user,
            form.text.data or "",
            form.digest.data or "",
            deactivate_missing=form.deactivate_missing.data,
        )
    if refusal.error is not None:
        status = 409 if isinstance(refusal.error, Conflict) else 422
        return render_template("provisioning/import.html", form=StaffFileForm(), refused=None, stale=refusal.message), status
    db.session.commit()
    links = [(user, _link(token)) for user, token in result.created]
    return render_template("provisioning/imported.html", result=result, links=links)


@bp.get("/staff/import/template.csv")
@roles_required(Role.ADMIN)
def staff_import_template():
    return Response(
        staff_import.import_template(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="lanyard-staff-template.csv"'},
    )


@bp.route("/provisioning", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def scim_tokens():
    form = ScimTokenForm()
    secret = None
    status = 200
    if form.validate_on_submit():
        with refused(form) as refusal:
            _token, secret = provisioning.create_scim_token(db.session, current_user, form.name.data)
        if refusal:
            status = 422
        else:
            db.session.commit()
            form = ScimTokenForm(formdata=None)
    elif form.errors:
        status = 422
    return render_template(
        "provisioning/tokens.html",
        form=form,
        secret=secret,
        tokens=provisioning.scim_tokens(db.session),
        scim_url=f"{current_app.config['BASE_URL']}/scim/v2",
        confirm=ConfirmForm(),
    ), status


@bp.post("/provisioning/<int:token_id>/revoke")
@roles_required(Role.ADMIN)
def revoke_scim_token(token_id: int):
    if ConfirmForm().validate_on_submit():
        token = provisioning.revoke_scim_token(db.session, current_user, token_id)
        db.session.commit()
        flash(f"The token '{token.name}' is revoked: provisioning with it stops at once.", "success")
    return redirect(url_for("provisioning.scim_tokens"))
