"""The Notifications page: turn on push for this browser, see and remove the browsers that get pushes."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.confirmations import ask_first, confirmation_page, confirmed
from app.devices.forms import ConfirmForm
from app.extensions import db
from app.forms_support import refused
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


@bp.route("/notifications/<int:subscription_id>/remove", methods=["GET", "POST"])
@login_required
def remove(subscription_id: int):
    subscription = push.owned_subscription(db.session, current_user, subscription_id)
    if request.method == "GET":
        return confirmation_page(
            title="Stop notifications to this browser?",
            consequences="That browser will no longer be told about requests or decisions. You can turn notifications "
            "on again from it at any time.",
            button="Stop notifications",
            cancel_url=url_for("push.settings"),
        )
    if not confirmed():
        return ask_first()
    form = ConfirmForm()
    if form.validate_on_submit():
        push.unsubscribe(db.session, current_user, subscription)
        db.session.commit()
        flash("That browser will no longer get notifications.", "success")
    return redirect(url_for("push.settings"))


@bp.post("/notifications/test")
@login_required
def send_test():
    """Queue a test notification to the person's own browsers (at most one a minute; audited)."""
    if ConfirmForm().validate_on_submit():
        with refused() as refusal:
            count = push.send_test_push(db.session, current_user)
        if not refusal:
            db.session.commit()
            flash(f"A test notification is on its way to {count} {'browser' if count == 1 else 'browsers'}.", "success")
    return redirect(url_for("push.settings"))
