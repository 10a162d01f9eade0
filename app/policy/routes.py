"""Read and accept the policy; publish it (admin); who has not accepted and reminders (head, office);
the coverage view; the "no personal phone" declaration; where to report a concern."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.access import roles_required
from app.auth.routes import safe_next
from app.devices.forms import ConfirmForm
from app.extensions import db
from app.forms_support import refused
from app.models import Role
from app.navigation import register_nav
from app.policy import demo  # noqa: F401  (registers the demo seeder)
from app.policy.forms import AcceptForm, PolicyForm, RemindForm
from app.services import coverage as coverage_service
from app.services import policy, school_settings
from app.services.staff_terms import parse_end_date

bp = Blueprint("policy", __name__)
OVERSEERS = (Role.APPROVER, Role.OFFICE, Role.ADMIN)
register_nav("Coverage", "policy.coverage", OVERSEERS, order=88)
register_nav("Policy", "policy.publish", (Role.ADMIN,), order=86)


@bp.get("/policy")
@login_required
def read():
    """The current policy, with the accept button until the person has accepted this version."""
    current = policy.current_policy(db.session)
    accepted = policy.acceptance_of(db.session, current_user, current.id) if current else None
    form = AcceptForm(policy_id=current.id if current else "")
    return render_template(
        "policy/read.html", policy=current, accepted=accepted, form=form, next_url=request.args.get("next", "")
    )


@bp.post("/policy/accept")
@login_required
def accept():
    form = AcceptForm()
    if not form.validate_on_submit() or not (form.policy_id.data or "").isdigit():
        return redirect(url_for("policy.read"))
    with refused() as refusal:
        policy.accept_policy(db.session, current_user, int(form.policy_id.data))
    if refusal:
        return redirect(url_for("policy.read"))
    db.session.commit()
    flash("Thank you: you have accepted the policy.", "success")
    return redirect(safe_next(request.args.get("next")), 303)


@bp.get("/policy/<int:policy_id>/policy.pdf")
@login_required
def document(policy_id: int):
    """A version's PDF, shown by the browser's own viewer in a sandbox (it may not run script here)."""
    version = policy.policy_version(db.session, policy_id)
    if not version.has_pdf:
        abort(404)
    response = Response(version.pdf_data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="policy-{version.id}.pdf"'
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'; frame-ancestors 'none'"
    return response


@bp.route("/admin/policy", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def publish():
    form = PolicyForm()
    current = policy.current_policy(db.session)
    if form.validate_on_submit():
        upload = request.files.get("pdf")
        try:
            review_date = parse_end_date(form.review_date.data) if (form.review_date.data or "").strip() else None
        except ValueError:
            review_date = None
        draft = policy.PolicyDraft(
            label=form.label.data or "",
            title=form.title.data or "",
            body=form.body.data or "",
            pdf=upload.read(policy.MAX_PDF_BYTES + 1) if upload else b"",
            review_date=review_date,
        )
        with refused(form) as refusal:
            version = policy.publish_policy(db.session, current_user, draft)
        if refusal:
            return render_template("policy/publish.html", form=form, policy=current), 422
        db.session.commit()
        flash(f"Version {version.label} is published: everyone is asked to accept it at their next visit.", "success")
        return redirect(url_for("policy.acceptances"), 303)
    if request.method == "GET" and current is not None:
        form.title.data = current.title
    return render_template("policy/publish.html", form=form, policy=current), 422 if form.errors else 200


@bp.get("/policy/acceptances")
@roles_required(*OVERSEERS)
def acceptances():
    current = policy.current_policy(db.session)
    return render_template(
        "policy/acceptances.html",
        policy=current,
        not_accepted=policy.people_not_accepted(db.session, current.id) if current else [],
        accepted=policy.acceptances(db.session, current.id) if current else [],
        form=RemindForm(),
    )


@bp.post("/policy/remind")
@roles_required(*OVERSEERS)
def remind():
    form = RemindForm()
    current = policy.current_policy(db.session)
    if current is None or not form.validate_on_submit():
        return redirect(url_for("policy.acceptances"))
    user_id = form.user_id.data or ""
    count = policy.send_reminders(db.session, current_user, current.id, {int(user_id)} if user_id.isdigit() else None)
    db.session.commit()
    flash(
        f"Reminder sent to {count} {'person' if count == 1 else 'people'}."
        if count
        else "Everyone has accepted: nobody to remind.",
        "success",
    )
    back = url_for("policy.coverage") if request.form.get("back") == "coverage" else url_for("policy.acceptances")
    return redirect(back, 303)


@bp.get("/coverage")
@roles_required(*OVERSEERS)
def coverage():
    return render_template("policy/coverage.html", coverage=coverage_service.coverage(db.session), form=RemindForm())


@bp.post("/coverage/remind-to-register")
@roles_required(*OVERSEERS)
def remind_to_register():
    form = RemindForm()
    if form.validate_on_submit():
        user_id = form.user_id.data or ""
        count = coverage_service.remind_to_register(db.session, current_user, {int(user_id)} if user_id.isdigit() else None)
        db.session.commit()
        flash(f"Reminder sent to {count} {'person' if count == 1 else 'people'}." if count else "Nobody to remind.", "success")
    return redirect(url_for("policy.coverage"), 303)


@bp.post("/devices/no-device")
@login_required
def declare_no_device():
    if ConfirmForm().validate_on_submit():
        if policy.declare_no_device(db.session, current_user):
            flash("Recorded: you do not bring a personal phone or recording device to school.", "success")
        db.session.commit()
    return redirect(url_for("devices.mine"), 303)


@bp.post("/devices/no-device/withdraw")
@login_required
def withdraw_no_device():
    if ConfirmForm().validate_on_submit():
        if policy.revoke_no_device_declaration(db.session, current_user):
            flash("Your declaration is withdrawn: register the phone or device you now bring.", "success")
        db.session.commit()
    return redirect(url_for("devices.mine"), 303)


@bp.get("/report-a-concern")
@login_required
def concern():
    """Whom to tell, as the policy says. This page stores nothing and takes no uploads."""
    return render_template("policy/concern.html", contacts=school_settings.concern_contacts(db.session))
