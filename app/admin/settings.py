"""Admin: the school's settings (J6), every change audited."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.access import roles_required
from app.admin.routes import bp
from app.devices.forms import ConfirmForm
from app.extensions import db
from app.models import Role
from app.navigation import register_nav
from app.services import (
    retention,  # noqa: F401  (defines the retention settings shown here)
    school_settings,
)
from app.services.errors import ValidationFailed

register_nav("Settings", "admin.settings", (Role.ADMIN,), order=85)


@bp.route("/settings", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def settings():
    form = ConfirmForm()
    errors: dict[str, list[str]] = {}
    typed: dict[str, list[str]] = {}
    if request.method == "POST" and form.validate_on_submit():
        typed = {key: request.form.getlist(key) for key in request.form if key != "csrf_token"}
        try:
            changed = school_settings.save_settings(db.session, current_user, typed)
        except ValidationFailed as error:
            db.session.rollback()
            errors = error.field_errors
        else:
            db.session.commit()
            flash(f"Settings saved ({changed} changed)." if changed else "Nothing was changed.", "success")
            return redirect(url_for("admin.settings"))
    return render_template(
        "admin/settings.html",
        form=form,
        fields=school_settings.setting_fields(db.session),
        approvers=school_settings.approver_choices(db.session),
        errors=errors,
        typed=typed,
    ), 422 if errors else 200
