"""Passkey registration (account page) and passkey sign-in; JSON steps driven by static/js/passkeys.js."""

from __future__ import annotations

import time

from flask import current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user

from app.access import public
from app.auth.routes import bp, safe_next
from app.confirmations import ask_first, confirmation_page, confirmed
from app.devices.forms import ConfirmForm
from app.extensions import db
from app.forms_support import refused
from app.problems import problem
from app.services import accounts, passkeys
from app.web import client_ip

REGISTER_CHALLENGE = "passkey_register_challenge"
SIGN_IN_CHALLENGE = "passkey_sign_in_challenge"


def _relying_party() -> passkeys.RelyingParty:
    return passkeys.RelyingParty.from_base_url(current_app.config["BASE_URL"], f"Lanyard · {current_app.config['SCHOOL_NAME']}")


def _options_response(options_json: str):
    return current_app.response_class(options_json, mimetype="application/json")


@bp.get("/account/passkeys")
@login_required
def passkey_list():
    return render_template("auth/passkeys.html", passkeys=passkeys.passkeys_of(db.session, current_user))


@bp.post("/account/passkeys/options")
@login_required
def passkey_registration_options():
    options, challenge = passkeys.registration_options(db.session, _relying_party(), current_user)
    session[REGISTER_CHALLENGE] = challenge.hex()
    return _options_response(options)


@bp.post("/account/passkeys")
@login_required
def passkey_register():
    challenge = session.pop(REGISTER_CHALLENGE, None)
    if not challenge:
        return problem(400, "Start again", "The passkey request had expired; press the button again.", "passkey-expired")
    data = request.get_json(silent=True) or {}
    with refused(None, flash_as=None) as refusal:
        passkeys.register_passkey(
            db.session,
            _relying_party(),
            current_user,
            data.get("credential") or {},
            bytes.fromhex(challenge),
            str(data.get("name", "")),
        )
    if refusal:
        return refusal.problem()
    db.session.commit()
    flash("Passkey added. Next time, sign in with it.", "success")
    return jsonify({"redirect": url_for("auth.passkey_list")})


@bp.route("/account/passkeys/<int:passkey_id>/remove", methods=["GET", "POST"])
@login_required
def passkey_remove(passkey_id: int):
    passkey = passkeys.owned_passkey(db.session, current_user, passkey_id)
    if request.method == "GET":
        return confirmation_page(
            title=f"Remove the passkey \u201c{passkey.name}\u201d?",
            consequences="You will no longer be able to sign in with it. Your password and other passkeys still work.",
            button="Remove passkey",
            cancel_url=url_for("auth.passkey_list"),
        )
    if not confirmed():
        return ask_first()
    if ConfirmForm().validate_on_submit():
        passkeys.remove_passkey(db.session, current_user, passkey_id)
        db.session.commit()
        flash("Passkey removed.", "success")
    return redirect(url_for("auth.passkey_list"))


@bp.post("/sign-in/passkey/options")
@public
def passkey_sign_in_options():
    options, challenge = passkeys.authentication_options(_relying_party())
    session[SIGN_IN_CHALLENGE] = challenge.hex()
    return _options_response(options)


@bp.post("/sign-in/passkey")
@public
def passkey_sign_in():
    challenge = session.pop(SIGN_IN_CHALLENGE, None)
    if not challenge:
        return problem(400, "Start again", "The sign-in request had expired; press the button again.", "passkey-expired")
    data = request.get_json(silent=True) or {}
    with refused(None, flash_as=None) as refusal:
        user = passkeys.authenticate(db.session, _relying_party(), data.get("credential") or {}, bytes.fromhex(challenge))
    if refusal:
        return refusal.problem()
    session_id = accounts.start_session(
        db.session, user, ip=client_ip(), user_agent=request.user_agent.string or "", method="passkey"
    )
    db.session.commit()
    session.clear()
    session["sid"] = session_id
    session["seen"] = time.time()
    login_user(user)
    return jsonify({"redirect": safe_next(data.get("next") if isinstance(data.get("next"), str) else None)})
