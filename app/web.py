"""Per-request rules shared by every page and API call: sessions, write transactions, headers."""

from __future__ import annotations

import time
from datetime import timedelta

from flask import Flask, abort, current_app, g, request, session
from flask_login import current_user
from werkzeug.routing import IntegerConverter

from app.database import reset_write_intent, set_write_intent
from app.extensions import csrf, db, login_manager
from app.ids import MAX_ID
from app.services.accounts import live_session_user
from app.services.api_tokens import user_for_token
from app.services.audit import Origin, reset_origin, set_origin

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class BoundedIntConverter(IntegerConverter):
    """Ids in URLs stop at the database's integer range: a larger number is simply not found."""

    def __init__(self, url_map, *args, **kwargs) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# Responses that hold nothing personal and may be cached (everything else is no-store).
CACHEABLE_ENDPOINTS = {"static", "main.offline", "main.manifest", "main.privacy", "main.service_worker", "main.school_logo"}


def client_ip() -> str:
    return request.remote_addr or ""


@login_manager.user_loader
def load_user(user_id: str):
    """Accept the cookie only while its server-side session is live and not idle too long."""
    config = current_app.config
    now = time.time()
    seen = session.get("seen", 0)
    if now - seen > config["SESSION_IDLE_MINUTES"] * 60:
        g.session_expired = True
        return None
    try:
        user = live_session_user(
            db.session, int(user_id), session.get("sid"), timedelta(hours=config["SESSION_ABSOLUTE_HOURS"])
        )
    except ValueError:
        return None
    if user is None:
        g.session_expired = True
        return None
    if now - seen > 30:
        session["seen"] = now
    return user


def bearer_token() -> str | None:
    """A personal API token, accepted on the JSON API only."""
    header = request.headers.get("Authorization", "")
    if request.path.startswith("/api/") and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


@login_manager.request_loader
def load_user_from_token(_request):
    secret = bearer_token()
    if not secret:
        return None
    found = user_for_token(db.session, secret)
    if found is None:
        return None
    user, token, recorded = found
    g.api_token_id = token.id
    if recorded:
        # The token's audited use stands whatever the request does next. Otherwise there is nothing to
        # commit, and not committing keeps the person and their roles loaded for the rest of the request.
        db.session.commit()
    return user


def _begin_request() -> None:
    token_call = bearer_token() is not None
    # A token call may record its use (an audit append), so it takes the write lock from the start.
    g.write_intent_token = set_write_intent(token_call or request.method not in SAFE_METHODS)
    g.origin_token = set_origin(Origin(ip=client_ip(), user_agent=request.user_agent.string or ""))
    if request.path.startswith("/api/") and any(len(request.args.getlist(key)) > 1 for key in request.args):
        abort(400, "Send each query parameter once.")
    if not token_call:
        # Cookie sessions need the CSRF token on every change; a bearer token cannot be sent by
        # another site's form, so token calls are not asked for one.
        csrf.protect(apply_exemptions=True)


def _end_request(_error=None) -> None:
    if token := g.pop("write_intent_token", None):
        reset_write_intent(token)
    if token := g.pop("origin_token", None):
        reset_origin(token)


def _drawn_for_someone(response) -> bool:
    """A public page (privacy notice, offline page) drawn for a signed-in person names them: personal too.

    An error page drawn because the database failed is taken as personal without asking who is signed
    in (that would query the failing database again).
    """
    from app.errors import avoid_database

    if avoid_database():
        return True
    return response.mimetype == "text/html" and current_user.is_authenticated


def _security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Permissions-Policy", "camera=(self), microphone=(), geolocation=(), payment=(), usb=()")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if current_app.config["HSTS"] and request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if request.endpoint not in CACHEABLE_ENDPOINTS or _drawn_for_someone(response):
        headers["Cache-Control"] = "no-store"
        headers.setdefault("Vary", "Cookie")
    return response


def _user_context() -> dict:
    from app.navigation import nav_for
    from app.services.notifications import unread_count

    if current_user.is_authenticated:
        return {"nav_items": nav_for(current_user), "unread_notices": unread_count(db.session, current_user)}
    return {"nav_items": [], "unread_notices": 0}


def register_request_rules(app: Flask) -> None:
    app.before_request(_begin_request)
    app.teardown_request(_end_request)
    app.after_request(_security_headers)
    app.context_processor(_user_context)
