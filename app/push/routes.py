"""The Notifications page: turn on push for this browser, see and remove the browsers that get pushes."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from app.devices.forms import ConfirmForm
from app.extensions import db
from app.models import Role
from app.navigation import register_nav
from app.services import push
from app.services.push_keys import application_server_key

bp = Blueprint("push", __name__)
register_nav("Notifications", "push.settings", (Role.STAFF, Role.APPROVER, Role.OFFICE, Role.ADMIN), order=80)


@bp.get("/notifications")
@login_required
def settings():
    return render_template(
        "push/settings.html",
        subscriptions=push.subscriptions_of(db.session, current_user),
        vapid_key=application_server_key(current_app.instance_path),
        confirm=ConfirmForm(),
    )


@bp.post("/notifications/<int:subscription_id>/remove")
@login_required
def remove(subscription_id: int):
    form = ConfirmForm()
    if form.validate_on_submit():
        subscription = push.owned_subscription(db.session, current_user, subscription_id)
        push.unsubscribe(db.session, current_user, subscription)
        db.session.commit()
        flash("That browser will no longer get notifications.", "success")
    return redirect(url_for("push.settings"))
