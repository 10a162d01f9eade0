"""The sign-in gate: a person who has not accepted the current policy is sent to read it first.

Only pages are gated. The JSON API, signing out, the account essentials, the privacy notice, "My data",
the PWA files and the concern page stay reachable, so nobody is locked out of their own data or of
reporting a safeguarding concern. Accepting is remembered in the session against the version's id, so
once accepted a request costs nothing more: the current version's id comes with the session lookup.
"""

from __future__ import annotations

from flask import Flask, g, redirect, request, session, url_for
from flask_login import current_user

from app.extensions import db
from app.services import policy

SESSION_KEY = "policy_ok"
OPEN_BLUEPRINTS = {"auth", "policy", "sso", "api", "scim", "push", "mail"}
OPEN_ENDPOINTS = {
    "static",
    "main.privacy",
    "main.offline",
    "main.manifest",
    "main.service_worker",
    "main.school_logo",
    "main.healthz",
    "main.my_data",
    "main.my_data_download",
}


def _gated() -> bool:
    endpoint = request.endpoint or ""
    if endpoint in OPEN_ENDPOINTS or endpoint.split(".", 1)[0] in OPEN_BLUEPRINTS or request.path.startswith("/api/"):
        return False
    return current_user.is_authenticated


def policy_gate():
    if not _gated():
        return None
    # Read with the person's session (app/web.py load_user) when the cookie signed them in.
    current_id = g.current_policy_id if "current_policy_id" in g else policy.current_policy_id(db.session)
    if current_id is None or session.get(SESSION_KEY) == current_id:
        return None
    if policy.has_accepted(db.session, current_user, current_id):
        session[SESSION_KEY] = current_id
        return None
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("policy.read", next=target) if target and target != "/" else url_for("policy.read"), 303)


def register_policy_gate(app: Flask) -> None:
    app.before_request(policy_gate)
