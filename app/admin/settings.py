"""Admin: the school's settings (J6), every change audited."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.access import roles_required
from app.admin.routes import bp
from app.devices.forms import ConfirmForm
from app.extensions import db
from app.forms_support import refused
from app.models import Role
from app.navigation import register_nav
from app.services import (
    retention,  # noqa: F401  (defines the retention settings shown here)
    school_logo,
    school_settings,
)

register_nav("Settings", "admin.settings", (Role.ADMIN,), order=85)


def _settings_page(form: ConfirmForm, errors: dict[str, list[str]], typed: dict[str, list[str]]):
    return render_template(
        "admin/settings.html",
        form=form,
        groups=school_settings.setting_groups(db.session),
        approvers=school_settings.approver_choices(db.session),
        time_zones=sorted(school_settings.known_time_zones()),
        logo_form=ConfirmForm(),
        errors=errors,
        typed=typed,
    ), 422 if errors else 200


@bp.route("/settings", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def settings():
    form = ConfirmForm()
    errors: dict[str, list[str]] = {}
    typed: dict[str, list[str]] = {}
    if request.method == "POST" and form.validate_on_submit():
        typed = {key: request.form.getlist(key) for key in request.form if key != "csrf_token"}
        with refused(None, flash_as=None) as refusal:
            changed = school_settings.save_settings(db.session, current_user, typed)
        errors = refusal.field_errors
        if not refusal:
            db.session.commit()
            flash(f"Settings saved ({changed} changed)." if changed else "Nothing was changed.", "success")
            return redirect(url_for("admin.settings"))
    return _settings_page(form, errors, typed)


@bp.post("/settings/logo")
@roles_required(Role.ADMIN)
def upload_logo():
    form = ConfirmForm()
    if not form.validate_on_submit():
        return redirect(url_for("admin.settings"))
    upload = request.files.get("logo")
    with refused(None, flash_as=None) as refusal:
        school_logo.save_logo(db.session, current_user, upload.read(school_logo.MAX_BYTES + 1) if upload else b"")
    if refusal:
        return _settings_page(ConfirmForm(), refusal.field_errors, {})
    db.session.commit()
    flash("The new logo is in place.", "success")
    return redirect(url_for("admin.settings"))


@bp.post("/settings/logo/remove")
@roles_required(Role.ADMIN)
def remove_logo():
    if ConfirmForm().validate_on_submit():
        school_logo.remove_logo(db.session, current_user)
        db.session.commit()
        flash("The logo has been removed.", "success")
    return redirect(url_for("admin.settings"))
