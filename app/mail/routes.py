"""Forgotten passwords, the account page's email choices, and (development only) the sent-mail page."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.access import public
from app.extensions import db
from app.forms_support import refused
from app.mail.forms import ForgotPasswordForm
from app.services import mail
from app.web import client_ip

bp = Blueprint("mail", __name__)
dev_bp = Blueprint("dev_mail", __name__, url_prefix="/dev/mail")


def email_choices() -> list:
    """For the account page: the optional kinds of email the signed-in person is offered, and whether on."""
    if not current_user.is_authenticated:
        return []
    return mail.preferences_for(db.session, current_user)


@bp.app_template_global()
def reset_by_email() -> bool:
    """Whether "Forgot your password?" can email a link: only when mail goes somewhere."""
    return mail.mail_mode() != "off"


@bp.route("/forgot-password", methods=["GET", "POST"])
@public
def forgot_password():
    form = ForgotPasswordForm()
    if not reset_by_email():
        return render_template("mail/forgot_password.html", form=form, unavailable=True), 200 if request.method == "GET" else 404
    if form.validate_on_submit():
        with refused(form) as refusal:
            sent = mail.request_password_reset(db.session, email=form.email.data, ip=client_ip())
        if refusal:
            return render_template("mail/forgot_password.html", form=form), 422
        db.session.commit()
        return render_template("mail/reset_requested.html", throttled=not sent), 200 if sent else 429
    return render_template("mail/forgot_password.html", form=form), 422 if form.errors else 200


@bp.post("/account/email")
@login_required
def preferences():
    with refused() as refusal:
        changes = mail.set_preferences(db.session, current_user, set(request.form.getlist("kind")))
    if refusal:
        return redirect(url_for("auth.account") + "#email")
    db.session.commit()
    flash("Your email choices are saved." if changes else "Nothing changed.", "success")
    return redirect(url_for("auth.account") + "#email")


def _links(text: str) -> list[str]:
    base = current_app.config["BASE_URL"]
    return [link for link in re.findall(r"https?://\S+", text) if link.startswith(base + "/")]


def _messages() -> list[dict]:
    from app.mail.worker import dev_mail_dir

    found = []
    for path in sorted(dev_mail_dir(current_app.instance_path).glob("*.eml"), reverse=True):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        found.append(
            {
                "name": path.stem,
                "headers": list(message.items()),
                "subject": message["Subject"],
                "to": message["To"],
                "date": message["Date"],
                "text": text.get_content() if text else "",
                "html": html.get_content() if html else "",
                "links": _links(text.get_content() if text else ""),
            }
        )
    return found


@dev_bp.get("")
@public
def index():
    """Development only (no SMTP configured): what the sender would have emailed, newest first."""
    return render_template("mail/dev_index.html", messages=_messages())


@dev_bp.get("/<name>")
@public
def message(name: str):
    found = next((m for m in _messages() if m["name"] == name), None)
    if found is None:
        abort(404)
    return render_template("mail/dev_message.html", message=found)
