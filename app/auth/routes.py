"""Signing in and out, setting a password from an invitation, and the account page."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from app.access import public
from app.auth.forms import ChangePasswordForm, SetPasswordForm, SignInForm, TokenForm
from app.confirmations import ask_first, confirmation_page, confirmed
from app.devices.forms import ConfirmForm
from app.extensions import db
from app.forms_support import refused
from app.problems import problem
from app.services import accounts, api_tokens, push
from app.services.errors import NotFound, ValidationFailed
from app.web import client_ip

bp = Blueprint("auth", __name__)


def safe_next(target: str | None) -> str:
    """Only ever go back to a path on this site (no open redirect)."""
    if not target:
        return url_for("main.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("main.home")
    return target


def unauthorised():
    if request.path.startswith("/api/"):
        response = problem(401, "Sign in required", "Sign in, or send a personal API token.", "unauthorised")
        response.headers["WWW-Authenticate"] = 'Bearer realm="Lanyard"'
        return response
    if g.get("session_expired"):
        flash("You were signed out. Please sign in again.", "info")
    else:
        flash("Please sign in to continue.", "info")
    return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))


@bp.route("/sign-in", methods=["GET", "POST"])
@public
def sign_in():
    form = SignInForm()
    next_url = safe_next(request.args.get("next"))
    if current_user.is_authenticated and request.method == "GET":
        return redirect(next_url)
    if form.validate_on_submit():
        config = current_app.config
        result = accounts.sign_in(
            db.session,
            email=form.email.data,
            password=form.password.data,
            ip=client_ip(),
            user_agent=request.user_agent.string or "",
            max_failures=config["LOGIN_MAX_FAILURES"],
            window=timedelta(minutes=config["LOGIN_WINDOW_MINUTES"]),
        )
        db.session.commit()
        if result.user is not None:
            session.clear()  # a new session at sign-in: nothing from before carries over
            session["sid"] = result.session_id
            session["seen"] = time.time()
            login_user(result.user)
            return redirect(next_url)
        if result.throttled:
            form.password.errors.append(
                f"Too many attempts. Wait {config['LOGIN_WINDOW_MINUTES']} minutes and try again, or ask the office to reset your password."
            )
        else:
            form.password.errors.append("That email and password do not match an active account.")
        return render_template("auth/sign_in.html", form=form), 429 if result.throttled else 200
    return render_template("auth/sign_in.html", form=form)


@bp.post("/sign-out")
@login_required
def sign_out():
    accounts.sign_out(db.session, current_user, session.get("sid"))
    db.session.commit()
    logout_user()
    session.clear()
    flash("You have signed out.", "info")
    return redirect(url_for("auth.sign_in"))


@bp.route("/set-password/<token>", methods=["GET", "POST"])
@public
def set_password(token: str):
    form = SetPasswordForm()
    if accounts.find_password_token(db.session, token) is None:
        return render_template("auth/link_expired.html"), 404
    if form.validate_on_submit():
        with refused(form, ValidationFailed, NotFound) as refusal:
            user = accounts.set_password_with_token(db.session, token, form.password.data)
            # They have just proved who they are with the link: sign them in, as the sign-in page does.
            session_id = accounts.start_session(
                db.session, user, ip=client_ip(), user_agent=request.user_agent.string or "", method="password_link"
            )
        if refusal:
            return render_template("auth/set_password.html", form=form), 422
        db.session.commit()
        session.clear()  # a new session: nothing from before carries over
        session["sid"] = session_id
        session["seen"] = time.time()
        login_user(user)
        flash("Your password is set and you are signed in.", "success")
        return redirect(url_for("main.home"))
    return render_template("auth/set_password.html", form=form)


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        with refused(form) as refusal:
            accounts.change_password(
                db.session,
                current_user,
                current=form.current_password.data,
                new=form.new_password.data,
                keep_session_id=session.get("sid"),
            )
        if refusal:
            return render_template(
                "auth/account.html",
                form=form,
                push_endpoints=[s.endpoint for s in push.subscriptions_of(db.session, current_user)],
            ), 422
        db.session.commit()
        flash("Password changed. Your other signed-in browsers have been signed out.", "success")
        return redirect(url_for("auth.account"))
    return render_template(
        "auth/account.html", form=form, push_endpoints=[s.endpoint for s in push.subscriptions_of(db.session, current_user)]
    )


@bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def tokens():
    form = TokenForm()
    if form.validate_on_submit():
        with refused(form) as refusal:
            token, secret = api_tokens.create_token(db.session, current_user, form.name.data)
        if refusal:
            return render_template("auth/tokens.html", form=form, tokens=api_tokens.tokens_of(db.session, current_user)), 422
        db.session.commit()
        return render_template("auth/token_created.html", token=token, secret=secret)
    status = 422 if form.errors else 200
    return render_template("auth/tokens.html", form=form, tokens=api_tokens.tokens_of(db.session, current_user)), status


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["GET", "POST"])
@login_required
def revoke_token(token_id: int):
    token = api_tokens.owned_token(db.session, current_user, token_id)
    if request.method == "GET":
        return confirmation_page(
            title=f"Revoke the token \u201c{token.name}\u201d?",
            consequences="Scripts and systems using it stop working at once. This cannot be undone: "
            "a new token would have to be made and given to them.",
            button="Revoke token",
            cancel_url=url_for("auth.tokens"),
        )
    if not confirmed():
        return ask_first()
    if ConfirmForm().validate_on_submit():
        api_tokens.revoke_token(db.session, current_user, token_id)
        db.session.commit()
        flash(f"Token \u201c{token.name}\u201d revoked. Scripts using it stop working now.", "success")
    return redirect(url_for("auth.tokens"))
