"""Admin: staff, roles, invitations and leavers (J6)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user

from app.access import roles_required
from app.admin.forms import InviteForm, PersonForm
from app.confirmations import ask_first, confirmation_page, confirmed
from app.devices.forms import ConfirmForm
from app.extensions import db
from app.forms_support import refused
from app.models import Role, StaffType, User
from app.navigation import register_nav
from app.services import accounts, mail, staff_terms
from app.services.errors import DomainError

bp = Blueprint("admin", __name__, url_prefix="/admin")
register_nav("Staff", "admin.staff", (Role.ADMIN,), order=80)


def _person(user_id: int) -> User:
    return accounts.get_person(db.session, user_id)


def _set_password_link(token: str) -> str:
    # Links that leave the app are built from the configured base URL, never from the Host header.
    return f"{current_app.config['BASE_URL']}{url_for('auth.set_password', token=token)}"


@bp.get("/staff")
@roles_required(Role.ADMIN)
def staff():
    text = request.args.get("q", "").strip()[:100]
    staff_type = request.args.get("type", "")
    staff_type = staff_type if staff_type in {t.value for t in StaffType} else ""
    return render_template(
        "admin/staff.html",
        people=accounts.search_people(db.session, text, staff_type),
        q=text,
        staff_type=staff_type,
        staff_types=list(StaffType),
    )


@bp.route("/staff/invite", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def invite():
    form = InviteForm()
    if form.validate_on_submit():
        with refused(form) as refusal:
            user = accounts.create_user(
                db.session,
                current_user,
                email=form.email.data,
                display_name=form.display_name.data,
                roles={Role(r) for r in form.roles.data or []},
            )
            staff_terms.set_staff_terms(
                db.session, current_user, user, staff_type=StaffType(form.staff_type.data), end_date=form.end_date.data
            )
            token = accounts.issue_password_token(db.session, current_user, user)
        if refusal:
            return render_template("admin/invite.html", form=form), 422
        emailed = mail.queue_invitation(db.session, user, _set_password_link(token)) is not None
        db.session.commit()
        return _show_link(user, token, emailed=emailed)
    return render_template("admin/invite.html", form=form), 422 if form.errors else 200


@bp.route("/staff/<int:user_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def person(user_id: int):
    user = _person(user_id)
    session.pop(_SHOWN_LINK, None)  # the admin has moved on from the page that showed a new link
    form = PersonForm(obj=None if request.method == "POST" else user)
    if request.method == "GET":
        form.roles.data = [r.value for r in user.roles if r != Role.STAFF]
    if form.validate_on_submit():
        with refused(form, DomainError) as refusal:
            accounts.update_profile(db.session, current_user, user, display_name=form.display_name.data)
            accounts.set_roles(db.session, current_user, user, {Role(r) for r in form.roles.data or []})
            staff_terms.set_staff_terms(
                db.session, current_user, user, staff_type=StaffType(form.staff_type.data), end_date=form.end_date.data
            )
        if refusal:
            return render_template("admin/person.html", form=form, person=user, confirm=ConfirmForm()), 422
        db.session.commit()
        flash(f"Saved {user.display_name}.", "success")
        return redirect(url_for("admin.person", user_id=user.id))
    return render_template("admin/person.html", form=form, person=user, confirm=ConfirmForm()), 422 if form.errors else 200


@bp.route("/staff/<int:user_id>/deactivate", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def deactivate(user_id: int):
    user = _person(user_id)
    if request.method == "GET":
        return confirmation_page(
            title=f"Deactivate {user.display_name}?",
            consequences=f"{user.display_name} is signed out everywhere at once and can no longer sign in, and their "
            "API tokens stop working. Their phones are erased after the retention period. You can reactivate them later.",
            button=f"Deactivate {user.display_name}",
            cancel_url=url_for("admin.person", user_id=user.id),
        )
    if not confirmed():
        return ask_first()
    if ConfirmForm().validate_on_submit():
        accounts.deactivate_user(db.session, current_user, user)
        db.session.commit()
        flash(f"{user.display_name} is deactivated and signed out everywhere.", "success")
    return redirect(url_for("admin.person", user_id=user.id))


@bp.post("/staff/<int:user_id>/reactivate")
@roles_required(Role.ADMIN)
def reactivate(user_id: int):
    user = _person(user_id)
    if ConfirmForm().validate_on_submit():
        accounts.reactivate_user(db.session, current_user, user)
        db.session.commit()
        flash(f"{user.display_name} can sign in again.", "success")
    return redirect(url_for("admin.person", user_id=user.id))


@bp.post("/staff/<int:user_id>/password-link")
@roles_required(Role.ADMIN)
def password_link(user_id: int):
    user = _person(user_id)
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("admin.person", user_id=user.id))
    token = accounts.issue_password_token(db.session, current_user, user, purpose="password_reset")
    db.session.commit()
    return _show_link(user, token, emailed=False)


_SHOWN_LINK = "lanyard.password_link"


def _show_link(user: User, token: str, *, emailed: bool):
    """Redirect after the post to a page that shows the new link, so a refresh never makes another.

    The link lives only in this admin's signed session cookie (never in the database, which keeps a hash),
    and only until they leave for the person's page.
    """
    session[_SHOWN_LINK] = {"user_id": user.id, "link": _set_password_link(token), "emailed": emailed}
    return redirect(url_for("admin.password_link_shown", user_id=user.id))


@bp.get("/staff/<int:user_id>/link")
@roles_required(Role.ADMIN)
def password_link_shown(user_id: int):
    user = _person(user_id)
    shown = session.get(_SHOWN_LINK) or {}
    if shown.get("user_id") != user.id:
        return render_template("admin/invited.html", person=user, link=None, emailed=False)
    return render_template("admin/invited.html", person=user, link=shown["link"], emailed=shown["emailed"])
