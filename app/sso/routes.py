"""Sign in with Microsoft or Google: the button's POST, the provider's callback, and the admin's rules.

The callback is a GET (the provider redirects the browser there), yet it signs someone in. It works in
three steps so no network call ever runs while the database's write lock is held:
1. claim the state (single use) in its own write transaction, committed at once, so a replayed
   callback is refused even if the rest fails;
2. swap the code for tokens and check the ID token (network, no transaction);
3. match the person and start the session in a second write transaction.
"""

from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user

from app.access import public, roles_required
from app.auth.routes import bp as auth_bp
from app.auth.routes import safe_next
from app.database import write_intent
from app.extensions import db
from app.forms_support import refused
from app.models import Role, SignInProvider
from app.navigation import register_nav
from app.services import sso
from app.sso import client
from app.sso.forms import SignInRulesForm
from app.sso.providers import Provider, configured_providers, half_configured
from app.web import CONTENT_SECURITY_POLICY, client_ip

bp = Blueprint("sso", __name__)
register_nav("Sign-in", "sso.rules", (Role.ADMIN,), order=86)
BROWSER_STATE = "sso_state"
PASSWORD_ENDPOINTS = {"auth.sign_in": {"POST"}, "auth.set_password": {"GET", "POST"}, "auth.account": {"POST"}}


def providers() -> dict[str, Provider]:
    return configured_providers(current_app.config)


def _provider(name: str) -> Provider:
    found = providers().get(name)
    if found is None:
        abort(404)
    return found


def redirect_uri(name: str) -> str:
    """The callback address to register at the provider: built from the configured base URL, never the Host header."""
    return f"{current_app.config['BASE_URL']}{url_for('sso.callback', provider=name)}"


@bp.app_template_global()
def sign_in_options() -> dict:
    """What the sign-in page offers: the configured providers' buttons, and whether passwords are off."""
    found = providers()
    return {"providers": list(found.values()), "passwords_off": sso.passwords_off(db.session, found)}


@auth_bp.before_request
def refuse_passwords_when_off():
    """While passwords are off, the password form, set-password links and password changes refuse.

    Runs after the app's own request rules (the CSRF check, the write transaction), before the view.
    """
    if request.method not in PASSWORD_ENDPOINTS.get(request.endpoint or "", ()) or not sso.passwords_off(db.session, providers()):
        return None
    if request.endpoint == "auth.sign_in":
        sso.record_password_refusal(db.session, request.form.get("email", ""))
        db.session.commit()
    return render_template("sso/passwords_off.html"), 403


@auth_bp.after_request
def let_the_buttons_reach_the_providers(response):
    """The sign-in page's buttons POST here and are redirected to the provider; browsers hold that redirect
    to the page's CSP ``form-action``, so the sign-in page names the configured providers' origins too."""
    found = providers()
    if request.endpoint == "auth.sign_in" and found:
        origins = " ".join(sorted({client.authorisation_origin(p) for p in found.values()}))
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            "form-action 'self'", f"form-action 'self' {origins}"
        )
    return response


@bp.post("/sign-in/oidc/<provider>")
@public
def start(provider: str):
    found = _provider(provider)
    try:
        client.metadata(found, current_app.config["OIDC_TIMEOUT_SECONDS"])  # before the write lock is taken
    except client.ProviderFailed:
        flash(sso.PROVIDER_TROUBLE.format(label=found.label), "error")
        return redirect(url_for("auth.sign_in"))
    started = sso.start_sign_in(db.session, found.name, safe_next(request.form.get("next")))
    db.session.commit()
    session[BROWSER_STATE] = started.state
    url = client.authorisation_url(
        found,
        redirect_uri=redirect_uri(found.name.value),
        state=started.state,
        nonce=started.nonce,
        code_verifier=started.code_verifier,
        timeout=current_app.config["OIDC_TIMEOUT_SECONDS"],
    )
    return redirect(url, 303)


def _refused(provider: Provider, reason: str, user=None, email_domain: str = "", *, keep: bool = True):
    """Audit the refusal (keeping the spent state when ``keep``) and tell the person what to do."""
    if not keep:
        db.session.rollback()
    with write_intent():
        sso.record_refusal(db.session, provider.name.value, reason, user, email_domain)
        db.session.commit()
    message = sso.REFUSALS.get(reason) or sso.PROVIDER_TROUBLE.format(label=provider.label)
    return render_template("sso/refused.html", message=message, provider=provider), 403


@bp.get("/sign-in/oidc/<provider>/callback")
@public
def callback(provider: str):
    found = _provider(provider)
    timeout = current_app.config["OIDC_TIMEOUT_SECONDS"]
    browser_state = session.pop(BROWSER_STATE, None)
    db.session.rollback()  # end the page's read transaction: the claim below takes the write lock
    with write_intent():
        try:
            claimed = sso.claim_state(db.session, found.name, request.args.get("state", ""), browser_state)
            if request.args.get("error") or not request.args.get("code"):
                raise sso.SignInRefused("provider_error")
        except sso.SignInRefused as refusal:
            return _refused(found, refusal.reason)
        db.session.commit()
    try:
        exchange = client.exchange_code(
            found,
            redirect_uri=redirect_uri(found.name.value),
            code=request.args["code"],
            code_verifier=claimed.code_verifier,
            nonce=claimed.nonce,
            timeout=timeout,
        )
    except client.ProviderFailed as failure:
        return _refused(found, failure.reason)
    with write_intent():
        try:
            user, session_id = sso.sign_in_with_claims(
                db.session, found, exchange.claims, ip=client_ip(), user_agent=request.user_agent.string or ""
            )
        except sso.SignInRefused as refusal:
            return _refused(found, refusal.reason, refusal.user, refusal.email_domain, keep=False)
        db.session.commit()
    session.clear()  # a new session at sign-in, as with a password
    session["sid"] = session_id
    session["seen"] = time.time()
    login_user(user)
    return redirect(safe_next(claimed.next_url))


@bp.route("/admin/sso", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def rules():
    found = providers()
    form = SignInRulesForm()
    if form.validate_on_submit():
        with refused(form) as refusal:
            changed = sso.save_sign_in_rules(
                db.session,
                current_user,
                found,
                passwords_off_wanted=form.passwords_off.data,
                create_domain=form.create_domain.data or "",
            )
        if not refusal:
            db.session.commit()
            flash(f"Sign-in settings saved ({changed} changed)." if changed else "Nothing was changed.", "success")
            return redirect(url_for("sso.rules"))
    elif request.method == "GET":
        form.passwords_off.data = bool(sso.get_setting(db.session, sso.PASSWORDS_OFF.key))
        form.create_domain.data = sso.get_setting(db.session, sso.CREATE_ACCOUNTS_DOMAIN.key) or ""
    linked = sso.linked_counts(db.session)
    status = 422 if form.errors else 200
    return render_template(
        "sso/rules.html",
        form=form,
        providers=[(SignInProvider(name), found.get(name)) for name in ("microsoft", "google")],
        redirect_uris={name: redirect_uri(name) for name in ("microsoft", "google")},
        half_configured=half_configured(current_app.config),
        linked=linked,
        passwords_off=sso.passwords_off(db.session, found),
    ), status
